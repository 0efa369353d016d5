import type { JSX } from 'preact';

/** Colour slots (components.css): picked from the name, so a person keeps their colour. */
const AVATAR_COLOURS = 8;

function colourOf(name: string): number {
  let hash = 0;
  for (let i = 0; i < name.length; i++) hash = (hash * 31 + name.charCodeAt(i)) >>> 0;
  return hash % AVATAR_COLOURS;
}

/** Initials from the words that start with a letter or digit ("Ana (work)" → "A", not "A("). */
function initialsOf(name: string): string {
  const all = name.trim().split(/\s+/u).filter((word) => word.length > 0);
  const lettered = all.filter((word) => /^[\p{L}\p{N}]/u.test(word));
  const words = lettered.length > 0 ? lettered : all; // a name of only emoji keeps its emoji
  const first = [...(words[0] ?? '?')][0] ?? '?';
  const second = words.length > 1 ? ([...(words[words.length - 1] ?? '')][0] ?? '') : '';
  return (first + second).toUpperCase();
}

/** A round initials badge; decorative (the name is always written next to it). */
export function Avatar({ name, group, large }: { name: string; group?: boolean; large?: boolean }): JSX.Element {
  return (
    <span class={`avatar avatar-c${colourOf(name)}${group ? ' avatar-group' : ''}${large ? ' avatar-lg' : ''}`} aria-hidden="true">
      {initialsOf(name)}
    </span>
  );
}
