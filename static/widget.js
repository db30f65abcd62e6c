// Switchboard website widget: the loader of
//   <script src="https://HUB/widget.js" data-key="pk_…" async></script>
// It only reads its own tag and imports the widget's modules from the same hub; everything
// else (the panel, the session, the chat) is in /widget/app.js, which talks to the hub through
// the JS client served at /sdk/. Optional attributes: data-identifier + data-identifier-hash
// (a logged-in user, hash computed by the site's backend), data-name, data-email, data-open.
(function () {
  'use strict';
  var tag = document.currentScript || document.querySelector('script[data-key][src*="widget.js"]');
  if (!tag || !tag.dataset.key) {
    console.warn('Switchboard widget: the script tag needs data-key="pk_…"');
    return;
  }
  var hub = new URL(tag.src, location.href).origin;
  var d = tag.dataset;
  var options = {
    hub: hub,
    key: d.key,
    identifier: d.identifier || null,
    identifierHash: d.identifierHash || null,
    name: d.name || null,
    email: d.email || null,
    open: d.open === 'true',
  };
  import(hub + '/widget/app.js')
    .then(function (m) {
      window.SwitchboardWidget = m.start(options);
    })
    .catch(function (e) {
      console.warn('Switchboard widget did not load: ' + e.message);
    });
})();
