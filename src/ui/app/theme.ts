/**
 * Appearance: follow the system (prefers-color-scheme), or light or dark by choice. The choice is
 * a preference of this browser, not of the profile, so it lives in localStorage (it says nothing
 * about anyone) and applies before the first paint.
 */
export type Theme = 'system' | 'light' | 'dark';

const THEME_KEY = 'covey.theme';

export function storedTheme(): Theme {
  try {
    const value = localStorage.getItem(THEME_KEY);
    return value === 'light' || value === 'dark' ? value : 'system';
  } catch {
    return 'system'; // storage blocked: follow the system
  }
}

export function applyTheme(theme: Theme = storedTheme()): void {
  if (theme === 'system') delete document.documentElement.dataset['theme'];
  else document.documentElement.dataset['theme'] = theme;
}

export function saveTheme(theme: Theme): void {
  try {
    if (theme === 'system') localStorage.removeItem(THEME_KEY);
    else localStorage.setItem(THEME_KEY, theme);
  } catch {
    // not kept across reloads; still applied now
  }
  applyTheme(theme);
}
