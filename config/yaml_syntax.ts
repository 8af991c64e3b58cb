/**
 * YAML syntax errors of a whole file (every document of it), as line:col issues: what a user
 * must see first, before any guess about what kind of file it is.
 * @module
 */
import { LineCounter, parseAllDocuments } from "yaml";
import { ConfigError, type ConfigIssue } from "./loader.ts";

/** Throws a {@linkcode ConfigError} listing every YAML syntax error in `text`. */
export function assertYamlSyntax(text: string, file: string): void {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false });
  const issues: ConfigIssue[] = [];
  for (const doc of docs) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
      issues.push({
        file,
        line: pos.line,
        col: pos.col,
        path: "",
        message: `invalid YAML: ${e.message.split("\n")[0]}`,
      });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
}
