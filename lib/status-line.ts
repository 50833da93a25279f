// Status texts that fit under a node in the editor: about 40 characters. The details (rates,
// clock offsets, every counter) are in the SQI scope and the nodes' measurement and stats
// outputs; the status says what state the node is in and what needs a look.

export const STATUS_MAX_CHARS = 40;

/** A node's status as Node-RED draws it: a coloured dot or ring and a short text. */
export interface StatusLine {
  fill: "red" | "green" | "yellow" | "blue" | "grey";
  shape: "dot" | "ring";
  text: string;
}

const length = (s: string): number => [...s].length;

/** `text` cut to `max` characters, with "…" where it was cut. */
export function clip(text: string, max = STATUS_MAX_CHARS): string {
  const chars = [...text];
  return chars.length <= max
    ? text
    : `${chars
        .slice(0, max - 1)
        .join("")
        .trimEnd()}…`;
}

/**
 * `head`, then as many of `extras` (in order, most important first) as fit, joined by " · ",
 * then "+N" for those left out. `head` alone is clipped when it is too long.
 */
export function statusText(head: string, extras: string[] = [], max = STATUS_MAX_CHARS): string {
  let text = clip(head, max);
  const rest = extras.filter(Boolean);
  for (let i = 0; i < rest.length; i++) {
    const more = rest.length - i - 1;
    const next = `${text} · ${rest[i]}`;
    // Room for this extra, and for the "+N" of those after it.
    if (length(next) + (more ? length(` · +${more}`) : 0) <= max) text = next;
    else {
      const counted = `${text} · +${rest.length - i}`;
      return length(counted) <= max ? counted : text;
    }
  }
  return text;
}
