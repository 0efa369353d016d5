import type { ComponentChildren, JSX } from 'preact';
import { Icon } from './icons.js';

/**
 * The bar on top of a screen: a back button where the screen has a parent (always on phones;
 * on wide screens only where `backAlways`), the title (the screen's h1 or h2), and actions.
 */
export function ScreenHeader({
  title,
  subtitle,
  onBack,
  backLabel = 'Back',
  level = 1,
  actions,
  backAlways,
}: {
  title: ComponentChildren;
  subtitle?: ComponentChildren;
  onBack?: () => void;
  backLabel?: string;
  level?: 1 | 2;
  actions?: ComponentChildren;
  backAlways?: boolean;
}): JSX.Element {
  const Heading = level === 1 ? 'h1' : 'h2';
  return (
    <header class="screen-header">
      {onBack !== undefined && (
        <button type="button" class={backAlways ? 'icon-btn' : 'icon-btn back-narrow'} onClick={onBack} aria-label={backLabel}>
          <Icon name="back" />
        </button>
      )}
      <div class="screen-title">
        <Heading class="screen-title-text">{title}</Heading>
        {subtitle !== undefined && <p class="screen-subtitle">{subtitle}</p>}
      </div>
      {actions !== undefined && <div class="screen-actions">{actions}</div>}
    </header>
  );
}
