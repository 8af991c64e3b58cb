/**
 * Help text layout: words wrapped to the terminal width skein promises (100 columns), so no
 * help line breaks a table or a terminal.
 * @module
 */

/** The widest line any help text prints. */
export const HELP_WIDTH = 100;

/**
 * Wraps `text` at word boundaries to `width` columns; the first line of each paragraph starts
 * with `indent`, later ones with `rest` (default: the same indent).
 */
export function wrapText(
  text: string,
  indent: string,
  width = HELP_WIDTH,
  rest = indent,
): string[] {
  const out: string[] = [];
  for (const para of text.split("\n")) {
    let line = indent;
    for (const word of para.split(/\s+/).filter(Boolean)) {
      if (line.trim().length > 0 && line.length + 1 + word.length > width) {
        out.push(line);
        line = rest + word;
      } else {
        line += (line.trim().length > 0 ? " " : "") + word;
      }
    }
    out.push(line.trimEnd());
  }
  return out;
}

/** One flag's help row: the flag padded to a column, its help wrapped beside it. */
export function flagRow(flag: string, help: string, width = HELP_WIDTH): string {
  const left = `  ${flag}`.padEnd(31);
  const pad = " ".repeat(left.length);
  if (left.length > 31) return [`  ${flag}`, ...wrapText(help, pad, width)].join("\n");
  const lines = wrapText(help, pad, width);
  lines[0] = left + lines[0]!.slice(pad.length);
  return lines.join("\n");
}
