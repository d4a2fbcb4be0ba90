import { describe, expect, it } from 'vitest';
import { AMO_WEBHOOK_MAX_LEADS, type AmoWebhookBody, countAmoWebhookBody, parseAmoWebhookBody } from '../src/inbox/amo-webhook-body.js';
import { buildWebhookBody } from '../src/sandbox/amo/index.js';
import { webhookLead } from './support/amo-webhook-leads.js';

/** Form-encodes pairs as amoCRM does (brackets percent-encoded, spaces as '+'). */
const form = (pairs: Array<[string, string]>) => new URLSearchParams(pairs).toString();

const lead = (id: number) => webhookLead(id);

const summary = (body: AmoWebhookBody) => body.events.map((e) => [e.event, e.dealId, e.statusId, e.pipelineId]);

describe('parseAmoWebhookBody', () => {
  const good: Array<[string, string, AmoWebhookBody['account'], Array<[string, number, number?, number?]>]> = [
    [
      'a compact status change (today’s shape)',
      form([
        ['leads[status][0][id]', '101'],
        ['leads[status][0][status_id]', '142'],
        ['leads[status][0][pipeline_id]', '7000001'],
        ['leads[status][0][old_status_id]', '61000001'],
        ['leads[status][0][old_pipeline_id]', '7000001'],
        ['account[id]', '31234567'],
        ['account[subdomain]', 'company2'],
      ]),
      { id: 31_234_567, subdomain: 'company2' },
      [['status', 101, 142, 7_000_001]],
    ],
    [
      'keys in reverse order, several events and leads',
      form(
        [
          ['account[subdomain]', 'company2'],
          ['leads[update][0][id]', '7'],
          ['leads[status][1][id]', '9'],
          ['leads[status][0][id]', '8'],
          ['leads[add][0][id]', '6'],
          ['leads[delete][0][id]', '5'],
        ].reverse() as Array<[string, string]>,
      ),
      { subdomain: 'company2' },
      [
        ['add', 6, undefined, undefined],
        ['update', 7, undefined, undefined],
        ['status', 8, undefined, undefined],
        ['status', 9, undefined, undefined],
        ['delete', 5, undefined, undefined],
      ],
    ],
    [
      'brackets left unencoded, a bad status id dropped rather than refused',
      'leads[status][0][id]=12&leads[status][0][status_id]=abc&account[id]=31234567',
      { id: 31_234_567 },
      [['status', 12, undefined, undefined]],
    ],
    ['a contact event: an account and no leads', form([['contacts[add][0][id]', '5'], ['account[id]', '1']]), { id: 1 }, []],
    [
      'a list past qs’s arrayLimit arrives as an index-keyed object',
      form([
        ['leads[status][1500][id]', '3'],
        ['leads[status][2][id]', '2'],
        ['account[subdomain]', 'company2'],
      ]),
      { subdomain: 'company2' },
      [
        ['status', 2, undefined, undefined],
        ['status', 3, undefined, undefined],
      ],
    ],
  ];

  it.each(good)('parses %s', (_name, text, account, events) => {
    const result = parseAmoWebhookBody(text);
    if (!result.ok) throw new Error(result.error);
    expect(result.body.account).toEqual(account);
    expect(summary(result.body)).toEqual(events);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['an empty body', '', /account: missing/],
    ['no account', form([['leads[status][0][id]', '1']]), /account: missing/],
    ['an account without id or subdomain', form([['leads[status][0][id]', '1'], ['account[_links][self]', 'https://x.amocrm.ru']]), /account\[id\] or account\[subdomain\]/],
    ['a non-numeric account id', form([['account[id]', '12x']]), /account\[id\]: must be a positive integer/],
    ['a lead without an id', form([['leads[status][0][status_id]', '142'], ['account[id]', '1']]), /leads\[status\]\[0\]\[id\]/],
    ['a lead id of zero', form([['leads[status][0][id]', '0'], ['account[id]', '1']]), /leads\[status\]\[0\]\[id\]: must be a positive integer/],
    ['a negative lead id', form([['leads[update][0][id]', '-4'], ['account[id]', '1']]), /leads\[update\]\[0\]\[id\]/],
    ['a lead id given twice', form([['leads[status][0][id]', '1'], ['leads[status][0][id]', '2'], ['account[id]', '1']]), /leads\[status\]\[0\]\[id\]/],
    ['a lead that is a bare string', form([['leads[status][0]', '5'], ['account[id]', '1']]), /leads\[status\]\[0\]: expected a lead/],
    ['a lead list keyed by names', form([['leads[status][x][id]', '5'], ['account[id]', '1']]), /leads\[status\]\[x\]: expected a numeric index/],
    ['leads that are not a map of events', form([['leads', 'all'], ['account[id]', '1']]), /leads: expected/],
    ['nesting deeper than any amoCRM key', `${'a'}${'[b]'.repeat(12)}=1&account[id]=1`, /not a form body amoCRM sends/],
    ['more parameters than qs would keep', `${'x=1&'.repeat(10_001)}account[id]=1`, /more than 10000 parameters/],
  ];

  it.each(bad)('refuses %s, naming what is wrong', (_name, text, message) => {
    const result = parseAmoWebhookBody(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(message);
  });

  it.each(['compact', 'full', 'legacy'] as const)('reads every lead of a shuffled %s body from the simulator', (shape) => {
    const leads = Array.from({ length: 30 }, (_, i) => lead(1000 + i));
    const text = buildWebhookBody({
      account: { id: 31_234_567, subdomain: 'company2' },
      leads: { status: leads.slice(0, 25), update: leads.slice(20) },
      shape,
      shuffle: true,
    });
    const result = parseAmoWebhookBody(text);
    if (!result.ok) throw new Error(result.error);
    expect(result.body.account).toEqual(shape === 'legacy' ? { subdomain: 'company2' } : { id: 31_234_567, subdomain: 'company2' });
    expect(result.body.events.filter((e) => e.event === 'status').map((e) => e.dealId).sort()).toEqual(leads.slice(0, 25).map((l) => l.id));
    expect(result.body.events.filter((e) => e.event === 'update').map((e) => e.dealId).sort()).toEqual(leads.slice(20).map((l) => l.id));
    for (const e of result.body.events) {
      expect(e.statusId).toBe(61_000_002);
      expect(e.pipelineId).toBe(7_000_001);
    }
    if (shape === 'full') {
      // The 7-deep custom field value survives whole (qs's default depth 5 would fold it).
      const fragment = result.body.events[0]!.fragment;
      expect(fragment.last_modified).toBe('1700000100');
      expect(fragment.custom_fields).toEqual([
        { id: '932792', name: 'detmirOrderId', values: [{ value: `R-${result.body.events[0]!.dealId}` }] },
        { id: '932796', name: 'Trial date', values: ['1700100000'] },
        { id: '932794', name: 'Subscription status', values: [{ value: 'Active', enum: '5001' }] },
      ]);
      expect(fragment.tags).toEqual([{ id: '499278', name: 'Companies 1. Services' }]);
      expect(fragment.name).toBe(`Deal ${result.body.events[0]!.dealId}`);
    }
  });

  it('tolerates lead events the bridge does not act on and names them', () => {
    const result = parseAmoWebhookBody(
      form([
        ['leads[responsible][0][id]', '4'],
        ['leads[note][0][note][element_id]', '4'],
        ['leads[status][0][id]', '4'],
        ['account[id]', '1'],
      ]),
    );
    if (!result.ok) throw new Error(result.error);
    expect(summary(result.body)).toEqual([['status', 4, undefined, undefined]]);
    expect(result.body.ignored.sort()).toEqual(['leads[note]', 'leads[responsible]']);
  });
});

describe('countAmoWebhookBody', () => {
  it.each([
    ['encoded keys', form([['leads[status][0][id]', '1'], ['leads[status][1][id]', '2'], ['account[id]', '1']]), 3, 2],
    ['bare brackets', 'leads[status][0][id]=1&leads[update][0][id]=2&account[id]=1', 3, 2],
    ['one deal under two events counts once', 'leads[status][0][id]=7&leads[update][0][id]=7', 2, 1],
    [
      'ids of tags and custom fields are not leads',
      form([
        ['leads[status][0][id]', '7'],
        ['leads[status][0][tags][0][id]', '499278'],
        ['leads[status][0][custom_fields][0][id]', '932792'],
      ]),
      3,
      1,
    ],
    ['events the bridge ignores', 'leads[responsible][0][id]=4&contacts[add][0][id]=5', 2, 0],
    ['empty parts', '&&leads[status][0][id]=1&', 1, 1],
    ['a malformed escape', 'leads%5Bstatus%5D%5B0%5D%5Bid%5D=%E0%A4%A&x=%', 2, 1],
  ])('counts %s', (_name, text, parameters, leads) => {
    expect(countAmoWebhookBody(text)).toEqual({ parameters, leads });
  });

  it(`refuses a body of more than ${AMO_WEBHOOK_MAX_LEADS} leads before parsing it`, () => {
    const leads = (n: number) => Array.from({ length: n }, (_, i) => `leads[status][${i}][id]=${i + 1}`).join('&') + '&account[id]=1';
    const ok = parseAmoWebhookBody(leads(AMO_WEBHOOK_MAX_LEADS));
    expect(ok.ok && ok.body.events.length).toBe(AMO_WEBHOOK_MAX_LEADS);
    expect(parseAmoWebhookBody(leads(AMO_WEBHOOK_MAX_LEADS + 1))).toEqual({
      ok: false,
      tooLarge: true,
      error: `the body names ${AMO_WEBHOOK_MAX_LEADS + 1} leads; amoCRM bodies of at most ${AMO_WEBHOOK_MAX_LEADS} are taken`,
    });
    expect(parseAmoWebhookBody(`${'x=1&'.repeat(10_001)}account[id]=1`)).toMatchObject({ ok: false, tooLarge: true });
  });
});
