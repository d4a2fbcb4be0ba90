import type { Scope } from '../../admin/api-keys.js';
import type { QueueState } from '../../queue/depth.js';
import { pluralOf } from '../../webview/messages/catalogue.js';

/**
 * The admin page in Russian (the default; ADMIN_LOCALE, else WEBVIEW_LOCALE). The
 * reference catalogue: en.ts must have every message with the same parameters (its type
 * is this one's). Numbers, times and plurals come from Intl (see ../format.ts).
 */

const plural = pluralOf('ru');

const STATE: Record<QueueState, string> = {
  waiting: 'Ждут',
  running: 'В работе',
  retrying: 'Ждут повтора',
  dead: 'С ошибкой',
};

export const ru = () => ({
  lang: 'ru',
  product: 'amobridge',
  layout: {
    title: 'Администрирование',
    skip: 'Перейти к содержанию',
    nav: 'Разделы',
    overview: 'Обзор',
    dead: 'Задания с ошибкой',
    orders: 'Заказы',
    signOut: 'Выйти',
    signedInAs: (name: string) => `Ключ «${name}»`,
  },
  signIn: {
    title: 'Вход',
    intro: 'Войдите с API-ключом администратора (его выдаёт команда amobridge apikey create).',
    key: 'API-ключ',
    keyHint: 'Начинается с ak_. Ключ не сохраняется в браузере и не попадает в журналы.',
    submit: 'Войти',
    refused: 'Ключ не подошёл: он неверен, отозван или введён не полностью.',
    empty: 'Введите API-ключ.',
    signedOut: 'Вы вышли.',
    sessionEnded: 'Сеанс завершён или ключ отозван. Войдите снова.',
  },
  overview: {
    title: 'Обзор',
    queue: 'Очередь заданий',
    kind: 'Вид задания',
    total: 'Всего',
    state: STATE,
    oldest: 'Самое давнее ожидающее задание',
    noneWaiting: 'Ни одно задание не ждёт.',
    waitingFor: (age: string) => `в ожидании: ${age}`,
    deadCount: (n: number) =>
      n === 0
        ? 'Заданий с ошибкой нет.'
        : `${n} ${plural(n, { one: 'задание с ошибкой ждёт', few: 'задания с ошибкой ждут', many: 'заданий с ошибкой ждут', other: 'задания с ошибкой ждут' })} решения.`,
    deadLink: 'Открыть задания с ошибкой',
    services: 'Внешние сервисы',
    service: { amocrm: 'amoCRM', partner: 'Компания 1' },
    mappings: 'Таблица этапов',
    mappingsResolved: 'сопоставлена с amoCRM',
    mappingsPending: 'ещё не сопоставлена с amoCRM',
    health: {
      ok: 'работает',
      unknown: 'ещё не проверялся',
      unauthorized: 'отказ в доступе',
      unreachable: (since: string) => `недоступен с ${since}`,
    },
    needsScope: (scope: Scope) => `Этот раздел виден ключу с правом ${scope}.`,
  },
  dead: {
    title: 'Задания с ошибкой',
    intro: 'Задания, исчерпавшие попытки или отклонённые окончательно. Устраните причину и повторите: задание вернётся в очередь с новыми попытками.',
    empty: 'Заданий с ошибкой нет.',
    shown: (n: number, limit: number) => (n < limit ? '' : `Показаны последние ${limit}.`),
    job: (id: string) => `Задание ${id}`,
    kind: 'Вид',
    key: 'Ключ очереди',
    attempts: 'Попыток',
    failedAt: 'Ошибка',
    error: 'Последняя ошибка',
    fullError: 'Полный текст',
    replay: 'Повторить',
    replayLabel: (id: string) => `Повторить задание ${id}`,
    replayed: (id: string) => `Задание ${id} возвращено в очередь.`,
    notDead: (id: string) => `Задание ${id} уже не в списке ошибок: его повторили раньше.`,
    needsReplay: 'Повторять задания может ключ с правом jobs:replay.',
  },
  pages: {
    forbidden: 'Недостаточно прав',
    forbiddenText: (scope: Scope) => `У ключа, с которым вы вошли, нет права ${scope}. Войдите с другим ключом или попросите добавить право.`,
    formExpired: 'Форма устарела',
    formExpiredText: 'Страница была открыта в другом сеансе или слишком давно. Откройте её заново и повторите действие.',
    notFound: 'Страница не найдена',
    nothingHere: 'По этому адресу ничего нет.',
    badRequest: 'Неверный запрос',
    goBack: 'Вернитесь назад и попробуйте снова.',
    serverError: 'Что-то пошло не так',
    later: 'Попробуйте ещё раз через минуту. Подробности — в журнале сервиса.',
    toOverview: 'На обзор',
    toSignIn: 'Ко входу',
  },
});

export type AdminMessages = ReturnType<typeof ru>;
