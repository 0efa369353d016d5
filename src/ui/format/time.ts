/** Times as a messenger shows them: "14:05" today, "Mon" this week, "3 Mar" this year, else a date. */
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const weekday = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const dayMonth = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const fullDate = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const fullDateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function startOfDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** Short form for lists and message meta. */
export function shortTime(ms: number, nowMs: number = Date.now()): string {
  const today = startOfDay(nowMs);
  if (ms >= today) return timeOfDay.format(ms);
  if (ms >= today - WEEK_MS + DAY_MS) return weekday.format(ms);
  if (new Date(ms).getFullYear() === new Date(nowMs).getFullYear()) return dayMonth.format(ms);
  return fullDate.format(ms);
}

export function timeOnly(ms: number): string {
  return timeOfDay.format(ms);
}

/** Long form for tooltips and screen readers. */
export function longTime(ms: number): string {
  return fullDateTime.format(ms);
}

/** "Today", "Yesterday" or a date: the day separators of a conversation. */
export function dayLabel(ms: number, nowMs: number = Date.now()): string {
  const today = startOfDay(nowMs);
  if (ms >= today) return 'Today';
  if (ms >= today - DAY_MS) return 'Yesterday';
  return fullDate.format(ms);
}

export function sameDay(a: number, b: number): boolean {
  return startOfDay(a) === startOfDay(b);
}

/** "in 6 days", "in 3 hours": when a link or an operation expires. */
export function timeUntil(ms: number, nowMs: number = Date.now()): string {
  const left = ms - nowMs;
  if (left <= 0) return 'now';
  const hours = Math.round(left / 3_600_000);
  if (hours < 1) return `in ${Math.max(1, Math.round(left / 60_000))} min`;
  if (hours < 48) return `in ${hours} hours`;
  return `in ${Math.round(left / DAY_MS)} days`;
}
