import type { JSX } from 'preact';
import { lengthHintText } from '../format/words.js';

/** Characters left in a name field near its limit (see `lengthHintText`); nothing before. */
export function LengthHint({ value, max }: { value: string; max: number }): JSX.Element | null {
  const text = lengthHintText(value.length, max);
  if (text === null) return null;
  return (
    <p class="hint" role="status">
      {text}
    </p>
  );
}
