// Splices generated markdown into README.md between `<!-- name:start -->` and `<!-- name:end -->` markers.
// Only the text between a pair of markers changes; a missing or doubled marker is an error, never a guess.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const readmePath = fileURLToPath(new URL('../../README.md', import.meta.url));

export class MarkerError extends Error {
  constructor(readonly marker: string, reason: string) {
    super(`README.md: ${reason} <!-- ${marker}:start --> / <!-- ${marker}:end -->`);
    this.name = 'MarkerError';
  }
}

function markers(name: string): [string, string] {
  return [`<!-- ${name}:start -->`, `<!-- ${name}:end -->`];
}

/** The text between the markers, without the newlines that frame it. Throws MarkerError. */
export function between(text: string, name: string): string {
  const [start, end] = locate(text, name);
  return text.slice(start, end).replace(/^\n/, '').replace(/\n$/, '');
}

/** `text` with `body` between the markers, each marker on its own line. Throws MarkerError. */
export function splice(text: string, name: string, body: string): string {
  const [start, end] = locate(text, name);
  return `${text.slice(0, start)}\n${body}\n${text.slice(end)}`;
}

/** Offsets just after the start marker and at the end marker. */
function locate(text: string, name: string): [number, number] {
  const [open, close] = markers(name);
  const start = text.indexOf(open);
  const end = text.indexOf(close);
  if (start < 0 || end < 0) throw new MarkerError(name, 'missing');
  if (text.indexOf(open, start + 1) >= 0 || text.indexOf(close, end + 1) >= 0) throw new MarkerError(name, 'doubled');
  if (end < start) throw new MarkerError(name, 'out of order:');
  return [start + open.length, end];
}

/** Writes the README only when a table changed; returns the names of the changed tables. */
export function updateReadme(tables: Readonly<Record<string, string>>, path = readmePath): string[] {
  const before = readFileSync(path, 'utf8');
  let after = before;
  const changed: string[] = [];
  for (const [name, body] of Object.entries(tables)) {
    if (between(after, name) !== body) changed.push(name);
    after = splice(after, name, body);
  }
  if (after !== before) writeFileSync(path, after);
  return changed;
}

/** A table cell: pipes would end the cell, `<` would open an HTML tag. */
export function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('<', '&lt;').replaceAll('\n', ' ');
}
