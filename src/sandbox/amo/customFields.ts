import type { ErrorCollector } from './problem.js';
import type { CustomField, CustomFieldInput, CustomFieldValue, CustomFieldValuesEntry } from './schemas.js';

/**
 * Writing custom field values the way API v4 does: a field is named by `field_id` or
 * `field_code`; its `values` replace the field's values; `null` or `[]` clears it; fields not
 * named keep their values. An entity whose last field is cleared answers
 * `custom_fields_values: null`, never `[]`.
 */

/** A validated write of one field: the new values, or null to clear it. */
export interface CustomFieldOp {
  def: CustomField;
  values: CustomFieldValue[] | null;
}

type RawValue = string | number | boolean | null | undefined;

function enumOf(def: CustomField, v: { enum_id?: number; enum_code?: string; value?: RawValue }) {
  const enums = def.enums ?? [];
  if (v.enum_id !== undefined) return enums.find((e) => e.id === v.enum_id);
  if (v.enum_code !== undefined) return enums.find((e) => e.value === v.enum_code);
  return undefined;
}

function asUnixTime(value: RawValue): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
  if (typeof value === 'string') {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return Math.floor(ms / 1000);
  }
  return undefined;
}

/**
 * Converts one written value to the stored form for the field's type; returns an error
 * detail instead when the value does not fit.
 */
function convertValue(
  def: CustomField,
  v: { value?: RawValue; enum_id?: number; enum_code?: string },
): CustomFieldValue | string {
  const { value } = v;
  switch (def.type) {
    case 'multitext': {
      if (value === null || value === undefined || value === '') return 'This value should not be blank.';
      // A phone or e-mail without a kind gets the first one (WORK), as the UI does.
      const kind = enumOf(def, v) ?? (v.enum_id === undefined && v.enum_code === undefined ? def.enums?.[0] : undefined);
      if (!kind) return 'The value you selected is not a valid choice.';
      return { value: String(value), enum_id: kind.id, enum_code: kind.value };
    }
    case 'select':
    case 'radiobutton':
    case 'multiselect': {
      const option = enumOf(def, v) ?? def.enums?.find((e) => value !== undefined && value !== null && e.value === String(value));
      if (!option) return 'The value you selected is not a valid choice.';
      return { value: option.value, enum_id: option.id };
    }
    case 'checkbox': {
      if (value === true || value === 1 || value === '1' || value === 'true') return { value: true };
      if (value === false || value === 0 || value === '0' || value === 'false') return { value: false };
      return 'This value should be of type bool.';
    }
    case 'date':
    case 'date_time':
    case 'birthday': {
      const t = asUnixTime(value);
      return t === undefined ? 'This value is not a valid timestamp.' : { value: t };
    }
    case 'numeric': {
      if (value === null || value === undefined || value === '' || Number.isNaN(Number(value))) {
        return 'This value should be of type numeric.';
      }
      // v4 answers numeric fields as strings ("field_type": "numeric", "values": [{"value": "415949"}]
      // in the contacts docs example).
      return { value: String(value) };
    }
    default: {
      if (value === null || value === undefined || typeof value === 'boolean') return 'This value should be of type string.';
      return { value: String(value) };
    }
  }
}

/**
 * Validates `custom_fields_values` of one item against the entity's field definitions,
 * adding errors (under `requestId`) for unknown fields and values that do not fit.
 */
export function normalizeCustomFields(
  defs: CustomField[],
  inputs: CustomFieldInput[],
  errors: ErrorCollector,
  requestId: string,
): CustomFieldOp[] {
  const ops: CustomFieldOp[] = [];
  inputs.forEach((input, i) => {
    const def =
      input.field_id !== undefined
        ? defs.find((d) => d.id === input.field_id)
        : defs.find((d) => d.code !== null && d.code === input.field_code);
    if (!def) {
      // The exact error of amoCRM's docs example for an unknown field_id.
      errors.add(requestId, 'NotSupportedChoice', `custom_fields_values.${i}.field_id`, 'The value you selected is not a valid choice.');
      return;
    }
    if (input.values === null || input.values.length === 0) {
      ops.push({ def, values: null });
      return;
    }
    const values: CustomFieldValue[] = [];
    input.values.forEach((raw, j) => {
      // An empty text clears rather than stores "".
      if (raw.value === '' && def.type !== 'multitext') return;
      const converted = convertValue(def, raw);
      if (typeof converted === 'string') {
        errors.add(requestId, 'InvalidValue', `custom_fields_values.${i}.values.${j}.value`, converted);
      } else {
        values.push(converted);
      }
    });
    const single = ['text', 'numeric', 'checkbox', 'select', 'radiobutton', 'date', 'date_time', 'birthday', 'url', 'textarea'];
    if (single.includes(def.type) && values.length > 1) {
      errors.add(requestId, 'OutOfRange', `custom_fields_values.${i}.values`, 'This field takes a single value.');
    }
    ops.push({ def, values: values.length ? values : null });
  });
  return ops;
}

/** Applies validated writes to an entity's current values. */
export function applyCustomFieldOps(
  existing: CustomFieldValuesEntry[] | null,
  ops: CustomFieldOp[],
): CustomFieldValuesEntry[] | null {
  const result = (existing ?? []).map((e) => ({ ...e, values: e.values.map((v) => ({ ...v })) }));
  for (const { def, values } of ops) {
    const at = result.findIndex((e) => e.field_id === def.id);
    if (values === null) {
      if (at >= 0) result.splice(at, 1);
      continue;
    }
    const entry: CustomFieldValuesEntry = {
      field_id: def.id,
      field_name: def.name,
      field_code: def.code,
      field_type: def.type,
      values,
    };
    if (at >= 0) result[at] = entry;
    else result.push(entry);
  }
  return result.length ? result : null;
}

/** The first value of a field on an entity, if any. */
export function fieldValue(values: CustomFieldValuesEntry[] | null, fieldId: number): CustomFieldValue['value'] | undefined {
  return values?.find((e) => e.field_id === fieldId)?.values[0]?.value;
}
