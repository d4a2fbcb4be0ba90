import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseMappings } from '../src/mappings/load.js';
import type { ContactOwnership } from '../src/mappings/schema.js';
import type { Customer } from '../src/partner/schema.js';
import {
  type ContactValues,
  contactFieldUpdates,
  contactValuesOf,
  fingerprintsOf,
  unknownFields,
} from '../src/sync/contact-fields.js';

const AMOCRM: ContactOwnership = { firstName: 'amocrm', lastName: 'amocrm', phone: 'amocrm', email: 'amocrm' };
const COMPANY1: ContactOwnership = { firstName: 'company1', lastName: 'company1', phone: 'company1', email: 'company1' };
const ALL = ['firstName', 'lastName', 'phone', 'email'] as const;

const customer: Customer = { firstName: 'Ольга', lastName: 'Смирнова', phone: '+79035550101', email: 'olga@example.com' };
const amo = (values: ContactValues) => fingerprintsOf(values, ALL);

describe('contactFieldUpdates', () => {
  const cases: Array<[string, ContactOwnership, Customer, ContactValues, ContactValues]> = [
    ['amoCRM owns everything: nothing, however different', AMOCRM, customer, { firstName: 'X', lastName: 'Y', phone: '1', email: 'z@z.z' }, {}],
    ['Company 1 owns everything, all equal: nothing', COMPANY1, customer, customer, {}],
    ['the same phone written another way is the same', { ...AMOCRM, phone: 'company1' }, customer, { phone: '+7 (903) 555-01-01' }, {}],
    ['a changed phone Company 1 owns', { ...AMOCRM, phone: 'company1' }, customer, { ...customer, phone: '+79160000000' }, { phone: '+79035550101' }],
    ['a changed name amoCRM owns stays', { ...AMOCRM, phone: 'company1' }, customer, { ...customer, firstName: 'Оля' }, {}],
    ['e-mails compare without case and spaces', { ...AMOCRM, email: 'company1' }, customer, { email: ' OLGA@Example.com' }, {}],
    ['an empty contact field is filled', { ...AMOCRM, email: 'company1' }, customer, { ...customer, email: undefined }, { email: 'olga@example.com' }],
    ['Company 1 with no e-mail never clears the contact’s', COMPANY1, { ...customer, email: undefined }, customer, {}],
    ['names: only the owned ones', { ...AMOCRM, lastName: 'company1' }, customer, { firstName: 'A', lastName: 'B' }, { lastName: 'Смирнова' }],
  ];
  it.each(cases)('%s', (_title, ownership, order, current, expected) => {
    expect(contactFieldUpdates(ownership, order, amo(current))).toEqual(expected);
  });

  it('a field never recorded is unknown (to be read), one recorded as empty is not', () => {
    const known = fingerprintsOf({ phone: undefined }, ['phone']);
    expect(unknownFields({ ...AMOCRM, phone: 'company1', email: 'company1' }, known)).toEqual(['email']);
    expect(unknownFields(AMOCRM, {})).toEqual([]);
  });

  it('fingerprints hold no value in the clear', () => {
    expect(JSON.stringify(amo(customer))).not.toMatch(/Ольга|9035550101|olga/);
  });
});

describe('contactValuesOf', () => {
  it('reads names and the first PHONE and EMAIL values by field code; a null field list is empty', () => {
    expect(
      contactValuesOf({
        id: 1,
        first_name: 'A',
        last_name: 'B',
        custom_fields_values: [
          { field_id: 10, field_code: 'PHONE', values: [{ value: '+7 1' }, { value: '+7 2' }] },
          { field_id: 11, field_code: 'EMAIL', values: [{ value: 'a@b.c' }] },
          { field_id: 932790, field_code: null, values: [{ value: 'u1' }] },
        ],
      }),
    ).toEqual({ firstName: 'A', lastName: 'B', phone: '+7 1', email: 'a@b.c' });
    expect(contactValuesOf({ id: 2, custom_fields_values: null })).toEqual({ firstName: undefined, lastName: undefined, phone: undefined, email: undefined });
  });
});

describe('contactOwnership in the mappings file', () => {
  const yaml = readFileSync('mappings/default.yaml', 'utf8');
  it('defaults to amoCRM for every field, also when the block is left out', () => {
    expect(parseMappings(yaml).contactOwnership).toEqual(AMOCRM);
    expect(parseMappings(yaml.replace(/\ncontactOwnership:[\s\S]*$/, '\n')).contactOwnership).toEqual(AMOCRM);
  });

  it('refuses an unknown owner and detmirUserId, naming the path', () => {
    expect(() => parseMappings(yaml.replace('  phone: amocrm', '  phone: partner'))).toThrow(/contactOwnership\.phone: /);
    expect(() => parseMappings(yaml.replace('  email: amocrm', '  email: amocrm\n  detmirUserId: company1'))).toThrow(/contactOwnership: .*detmirUserId/);
  });
});
