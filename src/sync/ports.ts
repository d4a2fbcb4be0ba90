import type { CreateOrderRequest, Order, OrderPage, OrderPatch } from '../partner/schema.js';

/**
 * What the domain needs of the outside world, in its own words. The amoCRM and Company 1
 * clients satisfy these structurally; the domain never imports a transport.
 */

export interface AmoCustomFieldValue {
  field_id: number;
  /** Predefined fields carry a code (PHONE, EMAIL); others null. */
  field_code?: string | null;
  values: Array<{ value?: unknown }>;
}

export interface AmoContactView {
  id: number;
  first_name?: string | null;
  last_name?: string | null;
  custom_fields_values?: AmoCustomFieldValue[] | null;
}

export interface AmoLeadView {
  id: number;
  price?: number | null;
  status_id: number;
  pipeline_id: number;
  updated_at?: number;
  custom_fields_values?: AmoCustomFieldValue[] | null;
  _embedded?: { contacts?: Array<{ id: number; is_main?: boolean }> };
}

export interface NewContactInput {
  firstName: string;
  lastName: string;
  name: string;
  phone: string;
  email?: string;
  customFields: Array<{ fieldId: number; value: string }>;
}

/** New values for some of a contact's fields (field ownership); fields absent stay as they are. */
export interface ContactFieldsUpdate {
  id: number;
  firstName?: string;
  lastName?: string;
  phone?: string;
  email?: string;
}

export interface ComplexLeadInput {
  requestId: string;
  name: string;
  pipelineId: number;
  statusId: number;
  price?: number;
  tagIds: number[];
  customFields: Array<{ fieldId: number; value: string }>;
  contact: { id: number } | NewContactInput;
}

export interface ComplexLeadResult {
  id: number;
  contact_id: number | null;
  request_id: string[] | string | null;
}

export interface AmoPort {
  searchContacts(query: string): Promise<AmoContactView[]>;
  getContactsByIds(ids: number[]): Promise<AmoContactView[]>;
  updateContacts(updates: ContactFieldsUpdate[]): Promise<void>;
  searchLeads(query: string): Promise<AmoLeadView[]>;
  getLeadsByIds(ids: number[]): Promise<AmoLeadView[]>;
  createLeadsComplex(items: ComplexLeadInput[]): Promise<ComplexLeadResult[]>;
  addLeadNotes(notes: Array<{ leadId: number; text: string }>): Promise<void>;
  moveLeads(moves: Array<{ leadId: number; statusId: number; pipelineId: number }>): Promise<void>;
  /** The contacts created since a time, in id order. */
  listContactsCreatedSince(params: { fromUnix: number; page: number }): Promise<{ contacts: AmoContactView[]; hasMore: boolean }>;
  /** The deals created since a time, every pipeline, in id order (with their contacts). */
  listLeadsCreatedSince(params: { fromUnix: number; page: number }): Promise<{ leads: AmoLeadView[]; hasMore: boolean }>;
  listLeadsUpdatedSince(params: {
    pipelineId: number;
    fromUnix: number;
    page: number;
  }): Promise<{ leads: AmoLeadView[]; hasMore: boolean }>;
}

export interface PartnerPort {
  getOrder(id: string): Promise<Order>;
  listOrders(userId: string): Promise<Order[]>;
  /** One page of the orders changed at or after `since`, oldest change first. */
  listOrdersChangedSince(params: { since: Date; limit?: number; cursor?: string }): Promise<OrderPage>;
  createOrder(input: CreateOrderRequest, idempotencyKey: string): Promise<Order>;
  patchOrder(id: string, patch: OrderPatch, idempotencyKey: string): Promise<Order>;
}

/**
 * The first plain value of a custom field as text (numbers and booleans stringified), or
 * undefined; amoCRM sends `custom_fields_values: null` for "no fields", and some field
 * types (links, lists) carry objects, which are not plain values.
 */
export function customFieldText(
  entity: { custom_fields_values?: AmoCustomFieldValue[] | null },
  fieldId: number,
): string | undefined {
  const field = entity.custom_fields_values?.find((f) => f.field_id === fieldId);
  for (const item of field?.values ?? []) {
    const v = item.value;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  }
  return undefined;
}
