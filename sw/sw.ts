// Service worker placeholder: precache and background sync arrive with the offline-PWA issue.
export {};
declare const self: ServiceWorkerGlobalScope;
self.addEventListener('install', () => void self.skipWaiting());
