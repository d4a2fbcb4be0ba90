import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A copy of mappings/default.yaml edited by `edit`, as an operator would edit it. */
export function editedMappings(edit: (yaml: string) => string): string {
  const original = readFileSync('mappings/default.yaml', 'utf8');
  const edited = edit(original);
  if (edited === original) throw new Error('the edit changed nothing');
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'amobridge-mappings-')), 'mappings.yaml');
  writeFileSync(file, edited);
  return file;
}
