import fs from 'node:fs';
import { parse } from 'yaml';
import { type MappingsFile, mappingsFileSchema } from './schema.js';

export class MappingsError extends Error {
  override name = 'MappingsError';
}

/** Reads and validates a mappings file; errors name the file and the offending path. */
export function loadMappingsFile(path: string): MappingsFile {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw new MappingsError(`cannot read mappings file ${path}: ${(error as Error).message}`);
  }
  return parseMappings(text, path);
}

export function parseMappings(text: string, source = 'mappings'): MappingsFile {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new MappingsError(`${source} is not valid YAML: ${(error as Error).message}`);
  }
  const parsed = mappingsFileSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new MappingsError(`${source} is invalid:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
