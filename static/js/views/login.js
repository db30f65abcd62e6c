// The sign-in form (operator mode): API key + identity.

import { $ } from './dom.js';

/**
 * Shows the form and calls `onSubmit({key, identity})`; a rejected promise's message is shown
 * under the form and focus returns to the key field.
 */
export function showLogin({ onSubmit, error = '' }) {
  const section = $('#login');
  const form = $('#login-form');
  const err = $('#login-error');
  const key = $('#login-key');
  const identity = $('#login-identity');
  $('#app').hidden = true;
  section.hidden = false;
  const showError = (text) => {
    err.textContent = text;
    err.hidden = !text;
  };
  showError(error);
  try {
    identity.value = identity.value || localStorage.getItem('switchboard:identity') || '';
  } catch {
    // storage disabled
  }
  (key.value ? identity : key).focus();
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const k = key.value.trim();
    const id = identity.value.trim();
    if (!k) {
      showError('Enter an API key.');
      key.focus();
      return;
    }
    if (!id) {
      showError('Enter the name you will appear under.');
      identity.focus();
      return;
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    showError('');
    try {
      await onSubmit({ key: k, identity: id });
      section.hidden = true;
    } catch (e) {
      showError(e.status === 401 ? 'That API key was not accepted.' : e.message || String(e));
      key.focus();
    } finally {
      button.disabled = false;
    }
  };
}

export function hideLogin() {
  $('#login').hidden = true;
}
