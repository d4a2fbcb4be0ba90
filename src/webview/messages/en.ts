import type { OrderStatus } from '../../partner/schema.js';
import { type Brand, type Messages, type PluralForms, pluralOf, type WindowUnit } from './catalogue.js';

/** The webview in English (WEBVIEW_LOCALE=en). Same messages as ru.ts, checked by its type. */

const plural = pluralOf('en');

const STATUS: Record<OrderStatus, string> = {
  // Company 1 shows on_approval to its users as "In processing".
  on_approval: 'In processing',
  approved: 'Confirmed',
  in_work: 'In work',
  executed: 'Completed',
  rejected: 'Declined',
  cancelled: 'Cancelled',
};

const STATUS_CHANGED: Record<OrderStatus, string> = {
  on_approval: 'Order back in processing',
  approved: 'Order confirmed',
  in_work: 'Order in work',
  executed: 'Order completed',
  rejected: 'Order declined',
  cancelled: 'Order cancelled',
};

const UNITS: Record<WindowUnit, PluralForms> = {
  s: { one: 'second', other: 'seconds' },
  m: { one: 'minute', other: 'minutes' },
  h: { one: 'hour', other: 'hours' },
  d: { one: 'day', other: 'days' },
};

export const en = (b: Brand): Messages => ({
  lang: 'en',
  layout: {
    skip: 'Skip to content',
    signOut: 'Sign out',
    support: 'Support',
  },
  status: STATUS,
  orders: {
    title: 'My orders',
    newOrder: 'New order',
    list: 'Orders',
    empty: 'You have no orders yet.',
    emptyCanOrder: 'Tap “New order” to book.',
    closedHint: `New orders are placed in the ${b.app} app for now.`,
    stale: `The ${b.app} app is not answering right now, so this is the last state we know. Reload the page in a minute.`,
    orderNo: (id) => `Order ${id}`,
  },
  facts: {
    cost: 'Cost',
    costNotSet: 'Not set yet',
    paid: 'Payment',
    paidYes: 'Paid',
    paidNo: 'Not paid',
    subscription: 'Subscription',
    placed: 'Placed',
  },
  order: {
    back: '← My orders',
    statusHeading: 'Status',
    comment: 'Your comment',
    timeline: 'Order history',
    cancel: 'Cancel order',
    created: 'Your order is placed. A manager will contact you soon.',
    cancelled: 'Your order is cancelled.',
  },
  timeline: {
    placed: 'Order placed',
    placedHere: `Here, on ${b.brand}’s page`,
    placedInApp: `In the ${b.app} app`,
    withManager: 'Passed to a manager',
    status: STATUS_CHANGED,
    cost: (money) => `Cost: ${money}`,
    costRemoved: 'Cost removed',
    paid: 'Order paid',
    unpaid: 'Payment withdrawn',
    subscription: (value) => `Subscription status: ${value}`,
    subscriptionRemoved: 'Subscription status removed',
  },
  cancel: {
    title: 'Cancel the order?',
    text: (service, id) => `${service}, order ${id}.`,
    irreversible: 'A cancelled order cannot be restored.',
    confirm: 'Yes, cancel the order',
    keep: 'No, back to the order',
  },
  form: {
    title: 'New order',
    service: 'Service',
    optional: '(optional)',
    submit: 'Place order',
    check: 'Please check the form',
    fields: { firstName: 'First name', lastName: 'Last name', phone: 'Phone', comment: 'Comment for the manager' },
    errors: {
      chooseService: 'Choose a service',
      enterFirstName: 'Enter your first name',
      enterPhone: 'Enter a phone number, like +7 903 555-01-01',
      formExpired: 'The form is out of date: reload it and try again',
      tooLong: (max) => `Keep it under ${max} ${plural(max, { one: 'character', other: 'characters' })}`,
    },
  },
  limit: {
    title: 'Too many orders',
    placed: (count, window) =>
      `You have placed ${count} ${plural(count, { one: 'order', other: 'orders' })} in ${window.count} ${plural(window.count, UNITS[window.unit])}.`,
    retry: (when) => `You can place a new order ${when}.`,
  },
  continueAs: {
    title: (name) => `Continue as ${name}?`,
    text: (current, next) => `You are signed in as ${current}. The link you opened signs in as ${next}.`,
    confirm: (name) => `Continue as ${name}`,
    stay: 'No, stay and go back to my orders',
    someone: 'another user',
  },
  pages: {
    reopen: `Go back to the ${b.app} app and open ${b.brand}’s page again: you will be signed in automatically.`,
    missing: `Please open this page from the ${b.app} app`,
    expired: 'This sign-in link has expired',
    replayed: 'This sign-in link has already been used',
    onceOnly: 'A sign-in link works only once.',
    invalid: 'This sign-in link is not valid',
    pendingGone: 'This sign-in confirmation is no longer valid',
    sessionEnded: 'Your session has ended',
    signedOut: 'You have signed out',
    comeBack: `To come back, open ${b.brand} from the ${b.app} app.`,
    notFound: 'Page not found',
    nothingHere: 'There is nothing at this address.',
    orderNotFound: 'Order not found',
    noSuchOrder: 'There is no such order among yours.',
    backToOrders: 'Back to my orders',
    backToOrder: 'Back to the order',
    ordersClosed: `New orders are placed in the ${b.app} app`,
    ordersClosedText: `For now, please order this service in the ${b.app} app. Your orders from there are shown here too.`,
    formExpired: 'This form has expired',
    formExpiredText: 'For your safety the form was not sent. Please go back, reload the page and try again.',
    alreadySent: 'This form was already sent',
    alreadySentText: 'It was sent before with different details. Please check your orders, then start a new order if you still need one.',
    createFailed: 'We could not place your order just now',
    partnerDown: `The ${b.app} app, which takes the orders, is not answering at the moment.`,
    partnerRefused: `The ${b.app} app, which takes the orders, did not accept it. We have been told about it.`,
    safeRetry: 'Trying again is safe: your order will not be placed twice.',
    tryAgain: 'Try again',
    orderUnavailable: `The ${b.app} app is not answering`,
    orderUnavailableText: 'We cannot show this order right now. Please try again in a minute.',
    cancelFailed: 'We could not cancel your order just now',
    cancelFailedText: `The ${b.app} app, which holds the orders, is not answering at the moment. Your order is unchanged.`,
    cannotCancel: 'This order can no longer be cancelled',
    cannotCancelText: (status) => `It is now “${status}”. Please contact your manager about it.`,
    onHold: 'This is not available right now',
    onHoldText: 'Support is reviewing your orders. Until the review is over, orders cannot be placed or changed. Please contact support.',
    badRequest: 'This request could not be read',
    goBack: 'Please go back and try again.',
    serverError: 'Something went wrong',
    later: 'Please try again in a minute.',
  },
});
