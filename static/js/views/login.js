// The sign-in screens: email and password (agents and admins), the API key (admins; folded
// away under "Sign in with an API key"), and the invite form that sets a new agent's password.
// They only collect input and show errors; main.js and session.js do the signing in.

import { $ } from './dom.js';

/** Shows `text` (or hides the line when empty) in the error paragraph `el`. */
function showError(el, text) {
  el.textContent = text || '';
  el.hidden = !text;
}

/** What a refused sign-in says, from the server's error code. */
function explain(e, fallback) {
  if (e.code === 'invalid_credentials' || e.status === 401) return fallback;
  if (e.code === 'rate_limited' || e.status === 429) {
    const wait = e.retryAfter ? ` Try again in ${e.retryAfter} s.` : ' Try again in a minute.';
    return `Too many attempts.${wait}`;
  }
  if (e.code === 'weak_password') return 'Choose a password of at least 10 characters.';
  if (e.code === 'invite_invalid' || e.status === 410) return 'This invite link was already used or has expired. Ask for a new one.';
  if (e.status === 404) return 'This server has no agent accounts: sign in with an API key.';
  return e.message || String(e);
}

/**
 * Binds `form`'s submit to `run(values)`; a rejected promise's message goes to `err` and focus
 * to `first`.
 */
function bind(form, err, first, read, run, fallback) {
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const values = read();
    if (values.error) {
      showError(err, values.error);
      values.field.focus();
      return;
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    showError(err, '');
    try {
      await run(values);
    } catch (e) {
      showError(err, explain(e, fallback));
      first.focus();
    } finally {
      button.disabled = false;
    }
  };
}

/**
 * Shows the sign-in: `onPassword({email, password})` and `onKey({key, identity})`; `error` is
 * shown under the form it concerns (`keyError` under the API-key form, opened).
 */
export function showLogin({ onPassword, onKey, error = '', keyError = '' }) {
  $('#app').hidden = true;
  $('#invite').hidden = true;
  $('#login').hidden = false;
  const email = $('#login-email');
  const password = $('#login-password');
  const key = $('#login-key');
  const identity = $('#login-identity');
  showError($('#password-error'), error);
  showError($('#login-error'), keyError);
  try {
    identity.value = identity.value || localStorage.getItem('switchboard:identity') || '';
    email.value = email.value || localStorage.getItem('switchboard:email') || '';
  } catch {
    // storage disabled
  }
  if (keyError) {
    $('#key-login').open = true;
    key.focus();
  } else {
    (email.value ? password : email).focus();
  }
  bind(
    $('#password-form'),
    $('#password-error'),
    password,
    () => {
      const v = { email: email.value.trim(), password: password.value };
      if (!v.email) return { error: 'Enter your email address.', field: email };
      if (!v.password) return { error: 'Enter your password.', field: password };
      return v;
    },
    async (v) => {
      await onPassword(v);
      password.value = '';
      try {
        localStorage.setItem('switchboard:email', v.email);
      } catch {
        // storage disabled
      }
    },
    'Wrong email or password.',
  );
  bind(
    $('#login-form'),
    $('#login-error'),
    key,
    () => {
      const v = { key: key.value.trim(), identity: identity.value.trim() };
      if (!v.key) return { error: 'Enter an API key.', field: key };
      if (!v.identity) return { error: 'Enter the name you will appear under.', field: identity };
      return v;
    },
    (v) => onKey(v),
    'That API key was not accepted.',
  );
}

/** The invite link's form: a password typed twice, then `onSubmit(password)`. */
export function showInvite({ onSubmit }) {
  $('#app').hidden = true;
  $('#login').hidden = true;
  $('#invite').hidden = false;
  const p1 = $('#invite-password');
  const p2 = $('#invite-password2');
  p1.focus();
  bind(
    $('#invite-form'),
    $('#invite-error'),
    p1,
    () => {
      if (p1.value.length < 10) return { error: 'Choose a password of at least 10 characters.', field: p1 };
      if (p1.value !== p2.value) return { error: 'The two passwords differ.', field: p2 };
      return { password: p1.value };
    },
    (v) => onSubmit(v.password),
    'This invite link is not valid.',
  );
}

export function hideLogin() {
  $('#login').hidden = true;
  $('#invite').hidden = true;
}
