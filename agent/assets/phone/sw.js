// Deskhand phone page: keeps its own shell so the page opens without a network and shows the
// last known state. Only these files are cached; API answers, NATS traffic and result files
// never are (they carry a person's data and must be fresh).
'use strict';
var SHELL = 'deskhand-shell-v1';
var FILES = ['./', './nats.js', './manifest.webmanifest', './icon.svg'];
self.addEventListener('install', function (e) {
  e.waitUntil(caches.open(SHELL).then(function (c) { return c.addAll(FILES); }).then(function () { return self.skipWaiting(); }));
});
self.addEventListener('activate', function (e) {
  e.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== SHELL; }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});
self.addEventListener('fetch', function (e) {
  var url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== self.location.origin) return;
  var scope = new URL(self.registration.scope);
  var rel = './' + url.pathname.slice(scope.pathname.length);
  if (FILES.indexOf(rel) < 0) return;
  // Network first (a new version shows at once), the cached shell when offline.
  e.respondWith(fetch(e.request).then(function (r) {
    if (r.ok) { var copy = r.clone(); caches.open(SHELL).then(function (c) { c.put(e.request, copy); }); }
    return r;
  }).catch(function () { return caches.match(e.request); }));
});
