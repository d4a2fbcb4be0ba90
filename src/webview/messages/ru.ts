import type { OrderStatus } from '../../partner/schema.js';
import { type Brand, type PluralForms, pluralOf, type WindowUnit } from './catalogue.js';

/**
 * The webview in Russian (the default, WEBVIEW_LOCALE=ru). Names from the mappings file
 * (brand, the partner's app) are set in «quotes» in the nominative, so no sentence needs
 * them declined.
 */

const plural = pluralOf('ru');
// A quoted name keeps its nominative only after a generic word (приложение «…», страница
// «…»): every sentence below puts one before it.

const STATUS: Record<OrderStatus, string> = {
  on_approval: 'В обработке',
  approved: 'Подтверждён',
  in_work: 'В работе',
  executed: 'Выполнен',
  rejected: 'Отклонён',
  cancelled: 'Отменён',
};

const STATUS_CHANGED: Record<OrderStatus, string> = {
  on_approval: 'Заказ снова в обработке',
  approved: 'Заказ подтверждён',
  in_work: 'Заказ в работе',
  executed: 'Заказ выполнен',
  rejected: 'Заказ отклонён',
  cancelled: 'Заказ отменён',
};

// Accusative, as after «за» and «через»: за 1 минуту, за 2 минуты, за 10 минут.
const UNITS: Record<WindowUnit, PluralForms> = {
  s: { one: 'секунду', few: 'секунды', many: 'секунд', other: 'секунды' },
  m: { one: 'минуту', few: 'минуты', many: 'минут', other: 'минуты' },
  h: { one: 'час', few: 'часа', many: 'часов', other: 'часа' },
  d: { one: 'день', few: 'дня', many: 'дней', other: 'дня' },
};

export const ru = (b: Brand) =>
  ({
    lang: 'ru',
    layout: {
      skip: 'Перейти к содержимому',
      signOut: 'Выйти',
      support: 'Поддержка',
    },
    status: STATUS,
    orders: {
      title: 'Мои заказы',
      newOrder: 'Новый заказ',
      list: 'Заказы',
      empty: 'У вас пока нет заказов.',
      emptyCanOrder: 'Нажмите «Новый заказ», чтобы записаться.',
      closedHint: `Пока новые заказы оформляются в приложении «${b.app}».`,
      stale: `Приложение «${b.app}» сейчас не отвечает, поэтому здесь последнее, что мы знаем. Обновите страницу через минуту.`,
      orderNo: (id: string) => `Заказ ${id}`,
    },
    facts: {
      cost: 'Стоимость',
      costNotSet: 'Пока не назначена',
      paid: 'Оплата',
      paidYes: 'Оплачен',
      paidNo: 'Не оплачен',
      subscription: 'Абонемент',
      placed: 'Оформлен',
    },
    order: {
      back: '← Мои заказы',
      statusHeading: 'Статус',
      comment: 'Ваш комментарий',
      timeline: 'История заказа',
      cancel: 'Отменить заказ',
      created: 'Заказ оформлен. Менеджер скоро свяжется с вами.',
      cancelled: 'Заказ отменён.',
    },
    timeline: {
      placed: 'Заказ оформлен',
      placedHere: `Здесь, на странице «${b.brand}»`,
      placedInApp: `В приложении «${b.app}»`,
      withManager: 'Заказ передан менеджеру',
      status: STATUS_CHANGED,
      cost: (money: string) => `Стоимость: ${money}`,
      costRemoved: 'Стоимость снята',
      paid: 'Заказ оплачен',
      unpaid: 'Оплата отменена',
      subscription: (value: string) => `Статус абонемента: ${value}`,
      subscriptionRemoved: 'Статус абонемента снят',
    },
    cancel: {
      title: 'Отменить заказ?',
      text: (service: string, id: string) => `${service}, заказ ${id}.`,
      irreversible: 'Отменённый заказ нельзя будет вернуть.',
      confirm: 'Да, отменить заказ',
      keep: 'Нет, вернуться к заказу',
    },
    form: {
      title: 'Новый заказ',
      service: 'Услуга',
      optional: '(необязательно)',
      submit: 'Оформить заказ',
      check: 'Проверьте форму',
      fields: { firstName: 'Имя', lastName: 'Фамилия', phone: 'Телефон', comment: 'Комментарий для менеджера' },
      errors: {
        chooseService: 'Выберите услугу',
        enterFirstName: 'Укажите имя',
        enterPhone: 'Укажите телефон, например +7 903 555-01-01',
        formExpired: 'Форма устарела: обновите страницу и попробуйте снова',
        tooLong: (max: number) => `Не длиннее ${max} ${plural(max, { one: 'символа', few: 'символов', many: 'символов', other: 'символа' })}`,
      },
    },
    limit: {
      title: 'Слишком много заказов',
      placed: (count: number, window: { count: number; unit: WindowUnit }) =>
        `Вы оформили ${count} ${plural(count, { one: 'заказ', few: 'заказа', many: 'заказов', other: 'заказа' })} за ${window.count} ${plural(window.count, UNITS[window.unit])}.`,
      retry: (when: string) => `Новый заказ можно будет оформить ${when}.`,
    },
    continueAs: {
      title: (name: string) => `Продолжить как ${name}?`,
      text: (current: string, next: string) => `Сейчас вы вошли как ${current}. Ссылка, по которой вы перешли, — для входа как ${next}.`,
      confirm: (name: string) => `Продолжить как ${name}`,
      stay: 'Нет, остаться и вернуться к моим заказам',
      someone: 'другой пользователь',
    },
    pages: {
      reopen: `Вернитесь в приложение «${b.app}» и снова откройте страницу «${b.brand}»: вход произойдёт автоматически.`,
      missing: `Откройте эту страницу из приложения «${b.app}»`,
      expired: 'Срок действия ссылки для входа истёк',
      replayed: 'Эта ссылка для входа уже использована',
      onceOnly: 'Ссылка для входа работает только один раз.',
      invalid: 'Ссылка для входа недействительна',
      pendingGone: 'Это подтверждение входа больше не действует',
      sessionEnded: 'Сеанс завершён',
      signedOut: 'Вы вышли',
      comeBack: `Чтобы вернуться, откройте страницу «${b.brand}» в приложении «${b.app}».`,
      notFound: 'Страница не найдена',
      nothingHere: 'По этому адресу ничего нет.',
      orderNotFound: 'Заказ не найден',
      noSuchOrder: 'Среди ваших заказов такого нет.',
      backToOrders: 'Вернуться к моим заказам',
      backToOrder: 'Вернуться к заказу',
      ordersClosed: `Новые заказы оформляются в приложении «${b.app}»`,
      ordersClosedText: `Пока оформите эту услугу в приложении «${b.app}». Заказы оттуда тоже видны здесь.`,
      formExpired: 'Форма устарела',
      formExpiredText: 'Для вашей безопасности форма не отправлена. Вернитесь назад, обновите страницу и попробуйте снова.',
      alreadySent: 'Эта форма уже отправлена',
      alreadySentText: 'Её уже отправляли с другими данными. Проверьте ваши заказы и, если заказ всё ещё нужен, оформите новый.',
      createFailed: 'Не удалось оформить заказ',
      partnerDown: `Приложение «${b.app}», которое принимает заказы, сейчас не отвечает.`,
      partnerRefused: `Приложение «${b.app}», которое принимает заказы, его не приняло. Мы уже знаем об этом.`,
      safeRetry: 'Повторить безопасно: заказ не будет оформлен дважды.',
      tryAgain: 'Попробовать снова',
      orderUnavailable: `Приложение «${b.app}» не отвечает`,
      orderUnavailableText: 'Сейчас не получается показать заказ. Попробуйте через минуту.',
      cancelFailed: 'Не удалось отменить заказ',
      cancelFailedText: `Приложение «${b.app}», где хранятся заказы, сейчас не отвечает. Заказ не изменился.`,
      cannotCancel: 'Этот заказ уже нельзя отменить',
      cannotCancelText: (status: string) => `Сейчас его статус — «${status}». Пожалуйста, свяжитесь с вашим менеджером.`,
      onHold: 'Сейчас это недоступно',
      onHoldText: 'Поддержка проверяет ваши заказы. Пока идёт проверка, заказы нельзя оформить или изменить. Пожалуйста, свяжитесь с поддержкой.',
      badRequest: 'Запрос не удалось прочитать',
      goBack: 'Вернитесь назад и попробуйте снова.',
      serverError: 'Что-то пошло не так',
      later: 'Попробуйте ещё раз через минуту.',
    },
  });
