// Progressive enhancement only: every page works without this script, and the server
// makes a double submit harmless on its own (one Idempotency-Key per form). This just
// spares the second request: a form, once sent, ignores further submits.
document.addEventListener('submit', (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  if (form.hasAttribute('data-submitting')) {
    event.preventDefault();
    return;
  }
  form.setAttribute('data-submitting', '');
  for (const button of form.querySelectorAll('button[type=submit]')) button.setAttribute('aria-disabled', 'true');
});
// Coming back through the history cache (the back button) must give usable forms again.
window.addEventListener('pageshow', () => {
  for (const form of document.querySelectorAll('form[data-submitting]')) {
    form.removeAttribute('data-submitting');
    for (const button of form.querySelectorAll('button[type=submit]')) button.removeAttribute('aria-disabled');
  }
});
