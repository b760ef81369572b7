/* Neuvonta resident chat. No framework, no build step; shared helpers from common.js
 * (window.Neuvonta), loaded before this file.
 *
 * Security: everything that comes from the server or the resident is put on the page
 * with textContent / createElement only, never as HTML. Links are made only for
 * http(s) addresses.
 */
(function () {
  'use strict';

  var N = window.Neuvonta;
  var ApiError = N.ApiError;

  var STORE_KEY = 'neuvonta.chat.v1';
  var RETRY_DELAYS_MS = [1000, 2000, 4000, 8000];
  var AWAIT_TIMEOUT_MS = 90000;

  var T = {
    fi: {
      pageTitle: 'Kunnan neuvonta – kysy verkossa',
      skip: 'Siirry kirjoittamaan viestiä',
      brand: 'Kunnan neuvonta',
      title: 'Kysy kunnan palveluista',
      lead: 'Saat vastauksen heti, vuorokauden ympäri. Voit myös pyytää asiakaspalvelijaa vastaamaan.',
      noticeTitle: 'Vastaajana on tekoäly',
      noticeAi: 'Tekoälyavustaja vastaa kunnan julkaisemien tietojen perusteella. Se voi tehdä virheitä, joten tarkista tärkeät asiat vastauksen lähteistä.',
      noticeHuman: 'Jos haluat asioida ihmisen kanssa, kirjoita ”Haluan puhua ihmisen kanssa” tai valitse Puhu ihmisen kanssa. Asiakaspalvelija vastaa tässä samassa keskustelussa.',
      privacy: 'Älä kirjoita keskusteluun henkilötunnustasi tai terveyteesi liittyviä tietoja.',
      conversation: 'Keskustelu',
      empty: 'Keskustelussa ei ole vielä viestejä. Kirjoita kysymyksesi alle.',
      messageLabel: 'Viestisi',
      messageHint: 'Enter lähettää viestin. Vaihto + Enter aloittaa uuden rivin.',
      send: 'Lähetä',
      human: 'Puhu ihmisen kanssa',
      humanText: 'Haluan puhua ihmisen kanssa',
      newChat: 'Aloita uusi keskustelu',
      emergency: 'Hätätilanteessa soita 112. Tämä palvelu ei ole hätäpalvelu.',
      roleResident: 'Sinä',
      roleAi: 'Tekoälyavustaja',
      roleAgent: 'Asiakaspalvelija',
      roleSystem: 'Ilmoitus',
      sending: 'lähetetään…',
      sources: 'Lähteet',
      newWindow: '(avautuu uuteen välilehteen)',
      thinking: 'Avustaja miettii vastausta…',
      withPerson: 'Viestisi on välitetty asiakaspalveluun. Vastaus tulee tähän keskusteluun.',
      reconnecting: 'Yhteys katkesi. Yhdistetään uudelleen…',
      newStarted: 'Uusi keskustelu aloitettu.',
      errorEmpty: 'Kirjoita viesti ennen lähettämistä.',
      errorNetwork: 'Viestiä ei saatu lähetettyä. Tarkista verkkoyhteys ja yritä uudelleen.',
      errorBusy: 'Palvelu ei juuri nyt ota viestejä vastaan. Yritä hetken kuluttua uudelleen.',
      errorTooMany: 'Olet lähettänyt monta viestiä lyhyessä ajassa. Odota {seconds} sekuntia ja lähetä viesti sitten uudelleen.',
      errorTooManyOne: 'Olet lähettänyt monta viestiä lyhyessä ajassa. Odota sekunti ja lähetä viesti sitten uudelleen.',
      errorTooManySoon: 'Olet lähettänyt monta viestiä lyhyessä ajassa. Odota hetki ja lähetä viesti sitten uudelleen.',
      errorGeneric: 'Jokin meni vikaan. Yritä uudelleen.',
      errorLoad: 'Keskustelua ei saatu ladattua. Yritetään uudelleen…'
    },
    sv: {
      pageTitle: 'Kommunens rådgivning – fråga på nätet',
      skip: 'Gå till meddelandefältet',
      brand: 'Kommunens rådgivning',
      title: 'Fråga om kommunens tjänster',
      lead: 'Du får svar genast, dygnet runt. Du kan också be att en kundtjänstmedarbetare svarar.',
      noticeTitle: 'Det är en AI som svarar',
      noticeAi: 'AI-assistenten svarar utifrån det som kommunen har publicerat. Den kan göra fel, så kontrollera viktiga saker i svarets källor.',
      noticeHuman: 'Om du vill tala med en människa, skriv ”Jag vill tala med en människa” eller välj Tala med en människa. En kundtjänstmedarbetare svarar i samma konversation.',
      privacy: 'Skriv inte din personbeteckning eller uppgifter om din hälsa i chatten.',
      conversation: 'Konversation',
      empty: 'Det finns inga meddelanden ännu. Skriv din fråga nedan.',
      messageLabel: 'Ditt meddelande',
      messageHint: 'Enter skickar meddelandet. Skift + Enter ger en ny rad.',
      send: 'Skicka',
      human: 'Tala med en människa',
      humanText: 'Jag vill tala med en människa',
      newChat: 'Börja en ny konversation',
      emergency: 'Ring 112 i en nödsituation. Den här tjänsten är ingen nödtjänst.',
      roleResident: 'Du',
      roleAi: 'AI-assistent',
      roleAgent: 'Kundtjänst',
      roleSystem: 'Meddelande',
      sending: 'skickas…',
      sources: 'Källor',
      newWindow: '(öppnas i en ny flik)',
      thinking: 'Assistenten funderar på svaret…',
      withPerson: 'Ditt meddelande har skickats till kundtjänsten. Svaret kommer i den här konversationen.',
      reconnecting: 'Anslutningen bröts. Ansluter igen…',
      newStarted: 'En ny konversation har börjat.',
      errorEmpty: 'Skriv ett meddelande innan du skickar.',
      errorNetwork: 'Meddelandet kunde inte skickas. Kontrollera nätverksanslutningen och försök igen.',
      errorBusy: 'Tjänsten tar inte emot meddelanden just nu. Försök igen om en stund.',
      errorTooMany: 'Du har skickat många meddelanden på kort tid. Vänta {seconds} sekunder och skicka sedan meddelandet igen.',
      errorTooManyOne: 'Du har skickat många meddelanden på kort tid. Vänta en sekund och skicka sedan meddelandet igen.',
      errorTooManySoon: 'Du har skickat många meddelanden på kort tid. Vänta en stund och skicka sedan meddelandet igen.',
      errorGeneric: 'Något gick fel. Försök igen.',
      errorLoad: 'Konversationen kunde inte laddas. Försöker igen…'
    },
    en: {
      pageTitle: 'Municipal advice – ask online',
      skip: 'Skip to the message field',
      brand: 'Municipal advice',
      title: 'Ask about municipal services',
      lead: 'You get an answer straight away, day and night. You can also ask a customer service agent to answer.',
      noticeTitle: 'An AI answers you',
      noticeAi: 'The AI assistant answers using information the municipality has published. It can make mistakes, so check important details in the sources of the answer.',
      noticeHuman: 'To deal with a person, write “I want to talk to a person” or choose Talk to a person. A customer service agent answers in this same conversation.',
      privacy: 'Do not write your personal identity code or details about your health in the chat.',
      conversation: 'Conversation',
      empty: 'There are no messages yet. Write your question below.',
      messageLabel: 'Your message',
      messageHint: 'Enter sends the message. Shift + Enter starts a new line.',
      send: 'Send',
      human: 'Talk to a person',
      humanText: 'I want to talk to a person',
      newChat: 'Start a new conversation',
      emergency: 'In an emergency call 112. This service is not an emergency service.',
      roleResident: 'You',
      roleAi: 'AI assistant',
      roleAgent: 'Service agent',
      roleSystem: 'Notice',
      sending: 'sending…',
      sources: 'Sources',
      newWindow: '(opens in a new tab)',
      thinking: 'The assistant is thinking…',
      withPerson: 'Your message has been passed to customer service. The answer will appear in this conversation.',
      reconnecting: 'Connection lost. Reconnecting…',
      newStarted: 'A new conversation has started.',
      errorEmpty: 'Write a message before sending.',
      errorNetwork: 'The message could not be sent. Check your network connection and try again.',
      errorBusy: 'The service cannot take messages right now. Please try again shortly.',
      errorTooMany: 'You have sent many messages in a short time. Wait {seconds} seconds, then send your message again.',
      errorTooManyOne: 'You have sent many messages in a short time. Wait a second, then send your message again.',
      errorTooManySoon: 'You have sent many messages in a short time. Wait a moment, then send your message again.',
      errorGeneric: 'Something went wrong. Please try again.',
      errorLoad: 'The conversation could not be loaded. Trying again…'
    }
  };

  var ROLE_KEYS = {
    resident: 'roleResident',
    ai: 'roleAi',
    agent: 'roleAgent',
    system: 'roleSystem'
  };

  // ---- state -------------------------------------------------------------------------

  var state = {
    lang: 'fi',
    sessionId: null,
    shown: new Map(), // message id -> element
    pending: new Map(), // client message id -> element (not yet accepted by the server)
    sending: false,
    awaiting: false,
    awaitTimer: null,
    events: null,
    reopenTimer: null,
    reloading: null,
    replyWhileSending: null // the first reply shown while a message was being sent
  };

  var el = {};

  var t = N.translator(T, function () {
    return state.lang;
  });

  // ---- storage and language ----------------------------------------------------------

  function saveStore() {
    N.saveStore(STORE_KEY, { session_id: state.sessionId, language: state.lang });
  }

  function applyLanguage(lang) {
    state.lang = N.supported(lang) ? lang : 'fi';
    N.applyTexts(state.lang, t);
    relabelMessages();
    updateStatus();
    saveStore();
  }

  /* Translate the labels of messages already shown, without making screen readers read
   * the whole conversation again. */
  function relabelMessages() {
    el.log.setAttribute('aria-live', 'off');
    var items = el.log.querySelectorAll('.msg');
    for (var i = 0; i < items.length; i++) {
      var item = items[i];
      var who = item.querySelector('.msg__who');
      if (who) who.textContent = t(ROLE_KEYS[item.getAttribute('data-role')] || 'roleSystem');
      var time = item.querySelector('.msg__time');
      if (time) time.textContent = formatTime(item.getAttribute('data-created'));
      var sending = item.querySelector('.msg__sending');
      if (sending) sending.textContent = t('sending');
      var sourcesTitle = item.querySelector('.msg__sources-title');
      if (sourcesTitle) sourcesTitle.textContent = t('sources');
      var hints = item.querySelectorAll('.new-window');
      for (var k = 0; k < hints.length; k++) hints[k].textContent = ' ' + t('newWindow');
    }
    window.setTimeout(function () {
      el.log.setAttribute('aria-live', 'polite');
    }, 0);
  }

  // ---- formatting --------------------------------------------------------------------

  function formatTime(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return '';
    var now = new Date();
    var opts = { hour: '2-digit', minute: '2-digit' };
    if (d.toDateString() !== now.toDateString()) {
      opts.day = 'numeric';
      opts.month = 'numeric';
      if (d.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
    }
    try {
      return new Intl.DateTimeFormat(N.locale(state.lang), opts).format(d);
    } catch (e) {
      return d.toLocaleString();
    }
  }

  var URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"'”“]+/gi;

  /* Text with http(s) addresses as links; built from text nodes and anchors only. */
  function appendLinkified(parent, text) {
    var last = 0;
    var match;
    URL_IN_TEXT.lastIndex = 0;
    while ((match = URL_IN_TEXT.exec(text)) !== null) {
      var raw = match[0].replace(/[.,;:!?)\]]+$/, '');
      var href = N.safeUrl(raw);
      if (!href) continue;
      if (match.index > last) parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      parent.appendChild(N.externalLink(href, raw, t('newWindow')));
      last = match.index + raw.length;
      URL_IN_TEXT.lastIndex = last;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  // ---- rendering ---------------------------------------------------------------------

  function renderMessage(m, pending) {
    var role = ROLE_KEYS[m.role] ? m.role : 'system';
    var item = N.node('div', 'msg msg--' + role + (pending ? ' msg--pending' : ''));
    item.setAttribute('data-role', role);
    item.setAttribute('data-created', m.created_at);
    if (m.id) item.setAttribute('data-id', m.id);

    var meta = N.node('p', 'msg__meta');
    meta.appendChild(N.node('span', 'msg__who', t(ROLE_KEYS[role])));
    meta.appendChild(document.createTextNode(' '));
    var time = N.node('time', 'msg__time', formatTime(m.created_at));
    time.dateTime = m.created_at;
    meta.appendChild(time);
    if (pending) {
      meta.appendChild(document.createTextNode(' '));
      meta.appendChild(N.node('span', 'msg__sending', t('sending')));
    }
    item.appendChild(meta);

    var body = N.node('p', 'msg__text');
    appendLinkified(body, String(m.text == null ? '' : m.text));
    item.appendChild(body);

    if (Array.isArray(m.sources) && m.sources.length) {
      var box = N.node('div', 'msg__sources');
      box.appendChild(N.node('p', 'msg__sources-title', t('sources')));
      var list = document.createElement('ul');
      N.fillSources(list, m.sources, t('newWindow'));
      box.appendChild(list);
      item.appendChild(box);
    }
    return item;
  }

  /* Put a message in its place by time; pending messages always stay last. */
  function insertInOrder(item) {
    var when = Date.parse(item.getAttribute('data-created')) || 0;
    var before = null;
    var children = el.log.children;
    for (var i = children.length - 1; i >= 0; i--) {
      var c = children[i];
      if (c.classList.contains('msg--pending')) {
        before = c;
        continue;
      }
      if ((Date.parse(c.getAttribute('data-created')) || 0) > when) {
        before = c;
        continue;
      }
      break;
    }
    el.log.insertBefore(item, before);
  }

  function updateEmpty() {
    el.empty.hidden = el.log.children.length > 0;
  }

  function nearBottom() {
    var doc = document.documentElement;
    return window.innerHeight + window.scrollY >= doc.scrollHeight - 160;
  }

  function keepInView(wasNearBottom) {
    if (!wasNearBottom) return;
    var smooth = !window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    el.composer.scrollIntoView({ block: 'end', behavior: smooth ? 'smooth' : 'auto' });
  }

  /* Show a message from the server once; returns true if it was new. */
  function showMessage(m) {
    if (!m || typeof m.id !== 'string' || state.shown.has(m.id)) return false;
    var bottom = nearBottom();
    var item = renderMessage(m, false);
    insertInOrder(item);
    state.shown.set(m.id, item);
    updateEmpty();
    // The reply can overtake the server's 202 for the question it answers.
    if (m.role !== 'resident' && state.sending && !state.replyWhileSending) {
      state.replyWhileSending = item;
    }
    if (m.role !== 'resident') stopAwaiting();
    keepInView(bottom);
    return true;
  }

  function showPending(clientId, text) {
    var item = renderMessage(
      { id: null, role: 'resident', text: text, sources: [], created_at: new Date().toISOString() },
      true
    );
    el.log.appendChild(item);
    state.pending.set(clientId, item);
    updateEmpty();
    keepInView(true);
    return item;
  }

  /* The server took the message: it is now known by its message id. */
  function acceptPending(clientId, messageId) {
    var item = state.pending.get(clientId);
    state.pending.delete(clientId);
    if (!item) return;
    if (state.shown.has(messageId)) {
      item.remove();
    } else {
      item.classList.remove('msg--pending');
      item.setAttribute('data-id', messageId);
      var reply = state.replyWhileSending;
      if (reply && reply.parentNode === el.log) el.log.insertBefore(item, reply);
      var sending = item.querySelector('.msg__sending');
      if (sending) sending.remove();
      state.shown.set(messageId, item);
    }
    updateEmpty();
  }

  function dropPending(clientId) {
    var item = state.pending.get(clientId);
    state.pending.delete(clientId);
    if (item) item.remove();
    updateEmpty();
  }

  function clearLog() {
    el.log.textContent = '';
    state.shown.clear();
    state.pending.clear();
    updateEmpty();
  }

  // ---- status ------------------------------------------------------------------------

  var connection = 'idle'; // idle | live | reconnecting

  /* Is a person handling the conversation? Then the AI does not answer. */
  function personHandles() {
    var items = el.log.querySelectorAll('.msg:not(.msg--resident)');
    if (!items.length) return false;
    var role = items[items.length - 1].getAttribute('data-role');
    return role === 'agent' || role === 'system';
  }

  function updateStatus() {
    var text = '';
    var dots = false;
    if (connection === 'reconnecting') {
      text = t('reconnecting');
    } else if (state.awaiting) {
      if (personHandles()) {
        text = t('withPerson');
      } else {
        text = t('thinking');
        dots = true;
      }
    }
    if (el.statusText.textContent !== text) el.statusText.textContent = text;
    el.statusDots.hidden = !dots;
    el.status.classList.toggle('status--active', !!text);
  }

  function startAwaiting() {
    state.awaiting = true;
    window.clearTimeout(state.awaitTimer);
    state.awaitTimer = window.setTimeout(stopAwaiting, AWAIT_TIMEOUT_MS);
    updateStatus();
  }

  function stopAwaiting() {
    if (!state.awaiting) return;
    state.awaiting = false;
    window.clearTimeout(state.awaitTimer);
    updateStatus();
  }

  function showError(text) {
    el.error.textContent = text;
  }

  /* Rate limited (429): how long to wait, from the Retry-After header when it came. */
  function tooManyText(seconds) {
    if (!(seconds > 0)) return t('errorTooManySoon');
    if (seconds === 1) return t('errorTooManyOne');
    return t('errorTooMany', { seconds: Math.ceil(seconds) });
  }

  function clearError() {
    el.error.textContent = '';
  }

  // ---- API ---------------------------------------------------------------------------

  function sleep(ms) {
    return new Promise(function (resolve) {
      window.setTimeout(resolve, ms);
    });
  }

  var request = N.requestJson;

  function sessionPath(suffix) {
    return '/api/chat/sessions/' + encodeURIComponent(state.sessionId) + suffix;
  }

  function ensureSession() {
    if (state.sessionId) return Promise.resolve(state.sessionId);
    return request('POST', '/api/chat/sessions', { language: state.lang }).then(function (data) {
      state.sessionId = String(data.session_id);
      saveStore();
      connectEvents();
      return state.sessionId;
    });
  }

  function forgetSession() {
    closeEvents();
    state.sessionId = null;
    saveStore();
  }

  /* Post one message; retried with the same client id, so the server stores it once. */
  function postMessage(text, clientId) {
    var attempt = 0;
    var renewed = false;
    function once() {
      return ensureSession()
        .then(function () {
          return request('POST', sessionPath('/messages'), {
            text: text,
            client_message_id: clientId
          });
        })
        .catch(function (err) {
          var status = err instanceof ApiError ? err.status : 0;
          if (status === 404 && !renewed) {
            // The conversation is gone (e.g. the service was reset): start a new one.
            renewed = true;
            forgetSession();
            clearLogKeepingPending();
            return once();
          }
          var transient = status === 0 || status === 502 || status === 503 || status === 504;
          if (transient && attempt < RETRY_DELAYS_MS.length) {
            var delay = RETRY_DELAYS_MS[attempt++];
            return sleep(delay).then(once);
          }
          throw err;
        });
    }
    return once();
  }

  function clearLogKeepingPending() {
    var keep = [];
    state.pending.forEach(function (item, id) {
      keep.push([id, item]);
    });
    clearLog();
    keep.forEach(function (pair) {
      el.log.appendChild(pair[1]);
      state.pending.set(pair[0], pair[1]);
    });
    updateEmpty();
  }

  function newClientId() {
    if (window.crypto && window.crypto.getRandomValues) {
      var bytes = new Uint8Array(16);
      window.crypto.getRandomValues(bytes);
      return Array.prototype.map
        .call(bytes, function (b) {
          return ('0' + b.toString(16)).slice(-2);
        })
        .join('');
    }
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function setSending(on) {
    state.sending = on;
    el.send.disabled = on;
    el.human.disabled = on;
  }

  function send(text, fromInput) {
    var clean = String(text || '').trim();
    if (!clean) {
      showError(t('errorEmpty'));
      el.input.focus();
      return;
    }
    if (state.sending) return;
    clearError();
    var hadFocus = document.activeElement;
    setSending(true);
    var clientId = newClientId();
    state.replyWhileSending = null;
    showPending(clientId, clean);
    if (fromInput) el.input.value = '';
    postMessage(clean, clientId)
      .then(function (data) {
        acceptPending(clientId, String(data.message_id));
        if (!state.replyWhileSending) startAwaiting();
      })
      .catch(function (err) {
        dropPending(clientId);
        if (fromInput && !el.input.value.trim()) el.input.value = text;
        var status = err instanceof ApiError ? err.status : 0;
        if (status === 422 && err.detail) showError(err.detail);
        else if (status === 0) showError(t('errorNetwork'));
        else if (status === 503) showError(t('errorBusy'));
        else if (status === 429) showError(tooManyText(err.retryAfter));
        else showError((err && (err.detail || err.message)) || t('errorGeneric'));
      })
      .then(function () {
        state.replyWhileSending = null;
        setSending(false);
        if (hadFocus === el.send || hadFocus === el.human || document.activeElement === document.body) {
          el.input.focus();
        }
      });
  }

  // ---- loading and live updates ------------------------------------------------------

  /* The whole conversation from the server; shows what is missing. */
  function reload() {
    if (!state.sessionId) return Promise.resolve();
    if (state.reloading) return state.reloading;
    var sid = state.sessionId;
    state.reloading = request('GET', sessionPath('/messages'))
      .then(function (messages) {
        if (sid !== state.sessionId || !Array.isArray(messages)) return;
        messages.forEach(showMessage);
        var last = messages[messages.length - 1];
        // The list may be older than what live updates have shown meanwhile (an answer that
        // arrived while it was on its way): wait only if the page too ends with the resident.
        var shown = el.log.querySelectorAll('.msg');
        var lastShown = shown.length ? shown[shown.length - 1].getAttribute('data-role') : null;
        if (last && last.role === 'resident' && lastShown === 'resident' && !state.awaiting) {
          // A page reload right after sending: the answer may still be on its way.
          var age = Date.now() - Date.parse(last.created_at);
          if (age >= -5000 && age < 60000) startAwaiting();
        }
        updateStatus();
      })
      .catch(function (err) {
        if (err instanceof ApiError && err.status === 404 && sid === state.sessionId) {
          forgetSession();
          clearLogKeepingPending();
        }
      })
      .then(function () {
        state.reloading = null;
      });
    return state.reloading;
  }

  function closeEvents() {
    window.clearTimeout(state.reopenTimer);
    if (state.events) {
      state.events.close();
      state.events = null;
    }
    connection = 'idle';
    updateStatus();
  }

  function connectEvents() {
    closeEvents();
    if (!state.sessionId || typeof window.EventSource !== 'function') return;
    var source = new EventSource(sessionPath('/events'));
    state.events = source;
    source.addEventListener('ready', function () {
      connection = 'live';
      updateStatus();
      reload();
    });
    source.addEventListener('message', function (ev) {
      var m;
      try {
        m = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      showMessage(m);
      updateStatus();
    });
    source.addEventListener('error', function () {
      if (state.events !== source) return;
      connection = 'reconnecting';
      updateStatus();
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. an error status): check the session, then retry.
        state.events = null;
        state.reopenTimer = window.setTimeout(function () {
          reload().then(function () {
            if (state.sessionId) connectEvents();
            else {
              connection = 'idle';
              updateStatus();
            }
          });
        }, 3000);
      }
    });
  }

  function startNewConversation() {
    forgetSession();
    clearLog();
    stopAwaiting();
    clearError();
    el.statusText.textContent = t('newStarted');
    el.input.focus();
  }

  // ---- wiring ------------------------------------------------------------------------

  function init() {
    el.log = document.getElementById('log');
    el.empty = document.getElementById('empty');
    el.status = document.getElementById('status');
    el.statusText = document.getElementById('status-text');
    el.statusDots = document.getElementById('status-dots');
    el.error = document.getElementById('error');
    el.composer = document.getElementById('composer');
    el.input = document.getElementById('message');
    el.send = document.getElementById('send');
    el.human = document.getElementById('human');

    var stored = N.loadStore(STORE_KEY);
    state.sessionId = typeof stored.session_id === 'string' ? stored.session_id : null;
    applyLanguage(N.startLanguage(stored.language));
    updateEmpty();

    el.composer.addEventListener('submit', function (ev) {
      ev.preventDefault();
      send(el.input.value, true);
    });
    el.input.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
        ev.preventDefault();
        if (!state.sending) send(el.input.value, true);
      }
    });
    el.input.addEventListener('input', function () {
      if (el.error.textContent && el.input.value.trim()) clearError();
    });
    el.human.addEventListener('click', function () {
      send(t('humanText'), false);
    });
    document.getElementById('new-chat').addEventListener('click', startNewConversation);

    N.onLanguageSwitch(applyLanguage);

    if (state.sessionId) {
      reload().then(function () {
        if (state.sessionId) connectEvents();
      });
    }
  }

  N.ready(init);
})();
