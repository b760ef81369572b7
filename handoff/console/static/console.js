/* Neuvonta agent console. No framework, no build step; shared helpers from
 * /static/common.js (window.Neuvonta), loaded before this file.
 *
 * Security: resident text and everything else from the API is put on the page with
 * textContent / createElement only, never as HTML; only http(s) addresses become links.
 * Signing in starts a session held in an HttpOnly cookie; every state-changing request
 * repeats the neuvonta_csrf cookie in the X-CSRF-Token header. A 401 shows the sign-in form.
 */
(function () {
  'use strict';

  var N = window.Neuvonta;
  var ApiError = N.ApiError;
  var node = N.node;

  var STORE_KEY = 'neuvonta.console.v1';
  var PREVIEW_CHARS = 160;

  var T = {
    fi: {
      pageTitle: 'Asiakaspalvelun työpöytä – Neuvonta',
      skipList: 'Siirry tapauslistaan',
      title: 'Asiakaspalvelun työpöytä',
      liveConnecting: 'Yhdistetään…',
      liveOn: 'Päivittyy reaaliajassa',
      liveLost: 'Yhteys katkesi – yhdistetään uudelleen…',
      tickets: 'Tapaukset',
      queue: 'Jono',
      allQueues: 'Kaikki jonot',
      status: 'Tila',
      filterOpen: 'Avoimet',
      filterResolved: 'Ratkaistut',
      filterAll: 'Kaikki',
      count: '{n} tapausta',
      countOne: '1 tapaus',
      countNone: 'Ei tapauksia näillä rajauksilla.',
      loading: 'Ladataan…',
      noTicket: 'Valitse tapaus listasta',
      noTicketHint: 'Avaa tapaus listasta nähdäksesi keskustelun ja vastataksesi asukkaalle.',
      ticketTitle: 'Tapaus {case}',
      urgent: 'Kiireellinen',
      urgentBanner: 'Kiireellinen tapaus: asukas voi olla vaarassa. Asukasta on neuvottu soittamaan hätänumeroon 112.',
      fStatus: 'Tila',
      fQueue: 'Jono',
      fDepartment: 'Palveluluokka',
      fReason: 'Syy',
      fConfidence: 'Tekoälyn varmuus',
      fLanguage: 'Kieli',
      fChannel: 'Kanava',
      fAddress: 'Osoite',
      fCreated: 'Avattu',
      fUpdated: 'Päivitetty',
      fFirstResponse: 'Ensimmäinen vastaus',
      fResolved: 'Ratkaistu',
      resolvedBy: '{when}, {who}',
      webAddress: 'Verkkochatin istunto (tunniste piilotettu)',
      none: '–',
      aiDraft: 'Tekoälyn luonnos',
      noDraft: 'Tekoäly ei tehnyt luonnosta tähän tapaukseen.',
      sources: 'Lähteet',
      transcript: 'Keskustelu',
      replyTitle: 'Vastaa asukkaalle',
      replyLabel: 'Vastauksesi',
      replyHint: 'Vastaus lähetetään asukkaalle samaan kanavaan, josta hän kirjoitti. Ctrl + Enter lähettää.',
      replyClosedHint: 'Tapaus on ratkaistu. Siihen ei voi enää vastata.',
      useDraft: 'Käytä tekoälyn luonnosta',
      sendReply: 'Lähetä vastaus',
      resolve: 'Merkitse ratkaistuksi',
      footer: 'Neuvonta – asiakaspalvelun työpöytä. Käsittele asukkaiden tietoja luottamuksellisesti.',
      newWindow: '(avautuu uuteen välilehteen)',
      roleResident: 'Asukas',
      roleAi: 'Tekoälyavustaja',
      roleAgent: 'Asiakaspalvelija',
      roleSystem: 'Järjestelmän ilmoitus',
      delivery: 'Toimitus: {s}',
      newTicket: 'Uusi tapaus: {case}',
      newUrgentTicket: 'Uusi kiireellinen tapaus: {case}',
      sending: 'Lähetetään vastausta…',
      replySent: 'Vastaus lähetetty asukkaalle.',
      replyStored: 'Vastaus tallennettu. Se lähetetään heti, kun yhteys toimii.',
      replyEmpty: 'Kirjoita vastaus ennen lähettämistä.',
      replyConflict: 'Tapaus on jo ratkaistu, joten siihen ei voi vastata.',
      resolving: 'Merkitään ratkaistuksi…',
      resolved: 'Tapaus {case} on merkitty ratkaistuksi.',
      errorPrefix: 'Virhe: ',
      errorLoad: 'Tietojen haku epäonnistui. Yritä uudelleen.',
      errorNotFound: 'Tapausta ei löytynyt.',
      errorAuth: 'Kirjautumisesi on vanhentunut. Kirjaudu uudelleen.',
      errorForbidden: 'Sinulla ei ole oikeutta tämän jonon tapauksiin.',
      errorGeneric: 'Toiminto epäonnistui. Yritä uudelleen.',
      loginTitle: 'Kirjaudu sisään',
      loginHint: 'Kirjaudu asiakaspalvelun käyttäjätunnuksellasi.',
      username: 'Käyttäjätunnus',
      password: 'Salasana',
      signIn: 'Kirjaudu',
      signingIn: 'Kirjaudutaan…',
      loginMissing: 'Kirjoita käyttäjätunnus ja salasana.',
      loginFailed: 'Kirjautuminen epäonnistui. Tarkista käyttäjätunnus ja salasana.',
      loginThrottled: 'Liian monta epäonnistunutta yritystä. Yritä uudelleen {s} sekunnin kuluttua.',
      sessionExpired: 'Kirjautumisesi on vanhentunut. Kirjaudu uudelleen.',
      signedOut: 'Olet kirjautunut ulos.',
      signedInAs: 'Kirjautunut: {name}',
      signOut: 'Kirjaudu ulos',
      adminLink: 'Kynnysarvot',
      st: { open: 'Avoin', resolved: 'Ratkaistu', assigned: 'Työn alla' },
      reasons: {
        asked_for_human: 'Asukas pyysi ihmistä',
        urgent: 'Kiireellinen tilanne',
        personal_case: 'Henkilökohtainen asia',
        low_confidence: 'Tekoäly ei ollut varma',
        no_answer: 'Vastausta ei löytynyt',
        ai_error: 'Tekoälyn virhe',
        ai_timeout: 'Tekoäly ei vastannut ajoissa',
        max_turns: 'Liian monta kierrosta',
        queue_rule: 'Jonosääntö'
      },
      channels: { web: 'Verkkochat', sms: 'Tekstiviesti', whatsapp: 'WhatsApp', telegram: 'Telegram', email: 'Sähköposti' },
      languages: { fi: 'suomi', sv: 'ruotsi', en: 'englanti' },
      deliveries: { delivered: 'toimitettu', pending: 'odottaa', sent: 'lähetetty', failed: 'epäonnistui' }
    },
    sv: {
      pageTitle: 'Kundtjänstens arbetsvy – Neuvonta',
      skipList: 'Gå till ärendelistan',
      title: 'Kundtjänstens arbetsvy',
      liveConnecting: 'Ansluter…',
      liveOn: 'Uppdateras i realtid',
      liveLost: 'Anslutningen bröts – ansluter igen…',
      tickets: 'Ärenden',
      queue: 'Kö',
      allQueues: 'Alla köer',
      status: 'Status',
      filterOpen: 'Öppna',
      filterResolved: 'Lösta',
      filterAll: 'Alla',
      count: '{n} ärenden',
      countOne: '1 ärende',
      countNone: 'Inga ärenden med dessa filter.',
      loading: 'Laddar…',
      noTicket: 'Välj ett ärende i listan',
      noTicketHint: 'Öppna ett ärende i listan för att se konversationen och svara invånaren.',
      ticketTitle: 'Ärende {case}',
      urgent: 'Brådskande',
      urgentBanner: 'Brådskande ärende: invånaren kan vara i fara. Invånaren har uppmanats att ringa nödnumret 112.',
      fStatus: 'Status',
      fQueue: 'Kö',
      fDepartment: 'Tjänsteklass',
      fReason: 'Orsak',
      fConfidence: 'AI:s säkerhet',
      fLanguage: 'Språk',
      fChannel: 'Kanal',
      fAddress: 'Adress',
      fCreated: 'Öppnat',
      fUpdated: 'Uppdaterat',
      fFirstResponse: 'Första svar',
      fResolved: 'Löst',
      resolvedBy: '{when}, {who}',
      webAddress: 'Webbchattsession (identifieraren dold)',
      none: '–',
      aiDraft: 'AI:s utkast',
      noDraft: 'AI:n gjorde inget utkast för det här ärendet.',
      sources: 'Källor',
      transcript: 'Konversation',
      replyTitle: 'Svara invånaren',
      replyLabel: 'Ditt svar',
      replyHint: 'Svaret skickas till invånaren i samma kanal som hen skrev i. Ctrl + Enter skickar.',
      replyClosedHint: 'Ärendet är löst. Det går inte längre att svara.',
      useDraft: 'Använd AI:s utkast',
      sendReply: 'Skicka svar',
      resolve: 'Markera som löst',
      footer: 'Neuvonta – kundtjänstens arbetsvy. Behandla invånarnas uppgifter konfidentiellt.',
      newWindow: '(öppnas i en ny flik)',
      roleResident: 'Invånare',
      roleAi: 'AI-assistent',
      roleAgent: 'Kundtjänst',
      roleSystem: 'Systemmeddelande',
      delivery: 'Leverans: {s}',
      newTicket: 'Nytt ärende: {case}',
      newUrgentTicket: 'Nytt brådskande ärende: {case}',
      sending: 'Skickar svaret…',
      replySent: 'Svaret har skickats till invånaren.',
      replyStored: 'Svaret har sparats. Det skickas så snart förbindelsen fungerar.',
      replyEmpty: 'Skriv ett svar innan du skickar.',
      replyConflict: 'Ärendet är redan löst, så det går inte att svara.',
      resolving: 'Markerar som löst…',
      resolved: 'Ärendet {case} har markerats som löst.',
      errorPrefix: 'Fel: ',
      errorLoad: 'Uppgifterna kunde inte hämtas. Försök igen.',
      errorNotFound: 'Ärendet hittades inte.',
      errorAuth: 'Din inloggning har gått ut. Logga in igen.',
      errorForbidden: 'Du har inte behörighet till ärendena i den här kön.',
      errorGeneric: 'Åtgärden misslyckades. Försök igen.',
      loginTitle: 'Logga in',
      loginHint: 'Logga in med ditt användarnamn för kundtjänsten.',
      username: 'Användarnamn',
      password: 'Lösenord',
      signIn: 'Logga in',
      signingIn: 'Loggar in…',
      loginMissing: 'Skriv ditt användarnamn och lösenord.',
      loginFailed: 'Inloggningen misslyckades. Kontrollera användarnamn och lösenord.',
      loginThrottled: 'För många misslyckade försök. Försök igen om {s} sekunder.',
      sessionExpired: 'Din inloggning har gått ut. Logga in igen.',
      signedOut: 'Du har loggat ut.',
      signedInAs: 'Inloggad: {name}',
      signOut: 'Logga ut',
      adminLink: 'Tröskelvärden',
      st: { open: 'Öppet', resolved: 'Löst', assigned: 'Under arbete' },
      reasons: {
        asked_for_human: 'Invånaren bad om en människa',
        urgent: 'Brådskande situation',
        personal_case: 'Personligt ärende',
        low_confidence: 'AI:n var osäker',
        no_answer: 'Inget svar hittades',
        ai_error: 'AI-fel',
        ai_timeout: 'AI:n svarade inte i tid',
        max_turns: 'För många omgångar',
        queue_rule: 'Köregel'
      },
      channels: { web: 'Webbchatt', sms: 'SMS', whatsapp: 'WhatsApp', telegram: 'Telegram', email: 'E-post' },
      languages: { fi: 'finska', sv: 'svenska', en: 'engelska' },
      deliveries: { delivered: 'levererat', pending: 'väntar', sent: 'skickat', failed: 'misslyckades' }
    },
    en: {
      pageTitle: 'Agent console – Neuvonta',
      skipList: 'Skip to the ticket list',
      title: 'Agent console',
      liveConnecting: 'Connecting…',
      liveOn: 'Live updates on',
      liveLost: 'Connection lost – reconnecting…',
      tickets: 'Tickets',
      queue: 'Queue',
      allQueues: 'All queues',
      status: 'Status',
      filterOpen: 'Open',
      filterResolved: 'Resolved',
      filterAll: 'All',
      count: '{n} tickets',
      countOne: '1 ticket',
      countNone: 'No tickets with these filters.',
      loading: 'Loading…',
      noTicket: 'Choose a ticket from the list',
      noTicketHint: 'Open a ticket from the list to see the conversation and reply to the resident.',
      ticketTitle: 'Ticket {case}',
      urgent: 'Urgent',
      urgentBanner: 'Urgent ticket: the resident may be in danger. The resident has been told to call the emergency number 112.',
      fStatus: 'Status',
      fQueue: 'Queue',
      fDepartment: 'Service class',
      fReason: 'Reason',
      fConfidence: 'AI confidence',
      fLanguage: 'Language',
      fChannel: 'Channel',
      fAddress: 'Address',
      fCreated: 'Opened',
      fUpdated: 'Updated',
      fFirstResponse: 'First response',
      fResolved: 'Resolved',
      resolvedBy: '{when}, {who}',
      webAddress: 'Web chat session (identifier hidden)',
      none: '–',
      aiDraft: 'AI draft',
      noDraft: 'The AI made no draft for this ticket.',
      sources: 'Sources',
      transcript: 'Conversation',
      replyTitle: 'Reply to the resident',
      replyLabel: 'Your reply',
      replyHint: 'The reply goes to the resident on the channel they wrote from. Ctrl + Enter sends.',
      replyClosedHint: 'The ticket is resolved. It can no longer be replied to.',
      useDraft: 'Use AI draft',
      sendReply: 'Send reply',
      resolve: 'Resolve',
      footer: 'Neuvonta – agent console. Treat residents’ information as confidential.',
      newWindow: '(opens in a new tab)',
      roleResident: 'Resident',
      roleAi: 'AI assistant',
      roleAgent: 'Service agent',
      roleSystem: 'System notice',
      delivery: 'Delivery: {s}',
      newTicket: 'New ticket: {case}',
      newUrgentTicket: 'New urgent ticket: {case}',
      sending: 'Sending the reply…',
      replySent: 'Reply sent to the resident.',
      replyStored: 'Reply saved. It will be sent as soon as the connection works.',
      replyEmpty: 'Write a reply before sending.',
      replyConflict: 'The ticket is already resolved, so it cannot be replied to.',
      resolving: 'Resolving…',
      resolved: 'Ticket {case} is resolved.',
      errorPrefix: 'Error: ',
      errorLoad: 'Could not load the data. Please try again.',
      errorNotFound: 'The ticket was not found.',
      errorAuth: 'Your sign-in has expired. Please sign in again.',
      errorForbidden: 'You do not have access to the tickets of this queue.',
      errorGeneric: 'The action failed. Please try again.',
      loginTitle: 'Sign in',
      loginHint: 'Sign in with your customer service username.',
      username: 'Username',
      password: 'Password',
      signIn: 'Sign in',
      signingIn: 'Signing in…',
      loginMissing: 'Enter your username and password.',
      loginFailed: 'Sign-in failed. Check your username and password.',
      loginThrottled: 'Too many failed attempts. Try again in {s} seconds.',
      sessionExpired: 'Your sign-in has expired. Please sign in again.',
      signedOut: 'You have signed out.',
      signedInAs: 'Signed in as {name}',
      signOut: 'Sign out',
      adminLink: 'Thresholds',
      st: { open: 'Open', resolved: 'Resolved', assigned: 'In progress' },
      reasons: {
        asked_for_human: 'Resident asked for a person',
        urgent: 'Urgent situation',
        personal_case: 'Personal case',
        low_confidence: 'AI was not confident',
        no_answer: 'No answer found',
        ai_error: 'AI error',
        ai_timeout: 'AI timed out',
        max_turns: 'Too many turns',
        queue_rule: 'Queue rule'
      },
      channels: { web: 'Web chat', sms: 'SMS', whatsapp: 'WhatsApp', telegram: 'Telegram', email: 'Email' },
      languages: { fi: 'Finnish', sv: 'Swedish', en: 'English' },
      deliveries: { delivered: 'delivered', pending: 'pending', sent: 'sent', failed: 'failed' }
    }
  };

  var ROLE_KEYS = { resident: 'roleResident', ai: 'roleAi', agent: 'roleAgent', system: 'roleSystem' };

  var state = {
    lang: 'fi',
    queues: [],
    tickets: [],
    known: null, // ticket ids seen in the list, to announce new ones
    openId: null,
    detail: null,
    drafts: new Map(), // ticket id -> reply text being written
    busy: false,
    events: null,
    reopenTimer: null,
    refreshTimer: null,
    listLoading: null,
    listAgain: false,
    live: 'connecting',
    me: null, // the signed-in account: {username, role, queues}
    lastUser: null,
    csrf: '',
    generation: 0, // bumped at each sign-in and sign-out: late answers of the old one are dropped
    loginMessage: null, // {key, values, kind}
    loginBusy: false,
    agesTimer: null
  };
  var el = {};

  // ---- helpers -----------------------------------------------------------------------

  var t = N.translator(T, function () {
    return state.lang;
  });

  function lookup(group, key) {
    var table = t(group) || {};
    if (key == null || key === '') return t('none');
    return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : String(key);
  }

  function queueLabel(name) {
    for (var i = 0; i < state.queues.length; i++) {
      var q = state.queues[i];
      if (q.name === name) return (q.label && (q.label[state.lang] || q.label.fi)) || q.name;
    }
    return String(name || t('none'));
  }

  function locale() {
    return N.locale(state.lang);
  }

  function formatDate(iso) {
    if (!iso) return t('none');
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    try {
      return new Intl.DateTimeFormat(locale(), { dateStyle: 'short', timeStyle: 'short' }).format(d);
    } catch (e) {
      return d.toLocaleString();
    }
  }

  function formatAge(iso) {
    var d = Date.parse(iso);
    if (isNaN(d)) return '';
    var seconds = Math.round((d - Date.now()) / 1000);
    var abs = Math.abs(seconds);
    var value = seconds;
    var unit = 'second';
    if (abs >= 86400) {
      value = Math.round(seconds / 86400);
      unit = 'day';
    } else if (abs >= 3600) {
      value = Math.round(seconds / 3600);
      unit = 'hour';
    } else if (abs >= 60) {
      value = Math.round(seconds / 60);
      unit = 'minute';
    } else {
      value = 0;
      unit = 'minute';
    }
    try {
      return new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' }).format(value, unit);
    } catch (e) {
      return formatDate(iso);
    }
  }

  function formatPercent(x) {
    if (typeof x !== 'number' || !isFinite(x)) return t('none');
    try {
      return new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 0 }).format(x);
    } catch (e) {
      return Math.round(x * 100) + ' %';
    }
  }

  function sourceList(list, sources) {
    return N.fillSources(list, sources, t('newWindow'));
  }

  function textLang(code) {
    return N.supported(code) ? code : '';
  }

  function preview(text) {
    var s = String(text || '').replace(/\s+/g, ' ').trim();
    return s.length > PREVIEW_CHARS ? s.slice(0, PREVIEW_CHARS - 1) + '…' : s;
  }

  // ---- status ------------------------------------------------------------------------

  function say(text, kind) {
    el.status.setAttribute('data-kind', kind || 'info');
    el.status.textContent = kind === 'error' ? t('errorPrefix') + text : text;
  }

  function announce(text) {
    el.announcer.textContent = text;
  }

  function setLive(mode) {
    state.live = mode;
    el.live.setAttribute('data-state', mode);
    el.liveText.textContent = t(
      mode === 'on' ? 'liveOn' : mode === 'lost' ? 'liveLost' : 'liveConnecting'
    );
  }

  // ---- API ---------------------------------------------------------------------------

  /* A JSON request with the CSRF header on state-changing methods. A 401 outside sign-in
   * shows the sign-in form; a validation error's messages become the error's detail. */
  function api(method, path, body) {
    var headers = {};
    if (method !== 'GET' && method !== 'HEAD') {
      var token = N.csrfToken() || state.csrf;
      if (token) headers['X-CSRF-Token'] = token;
    }
    return N.requestJson(method, path, body, headers).catch(function (err) {
      if (err.status === 401 && path.indexOf('/api/auth/') !== 0 && state.me) {
        showLogin('sessionExpired', 'error');
      }
      var data = err.data;
      if (!err.detail && data && Array.isArray(data.detail)) {
        err.detail = data.detail
          .map(function (d) {
            return d && d.msg ? String(d.msg) : '';
          })
          .filter(Boolean)
          .join('; ');
      }
      throw err;
    });
  }

  function ticketPath(id, suffix) {
    return '/api/tickets/' + encodeURIComponent(id) + (suffix || '');
  }

  function errorText(err) {
    var status = err instanceof ApiError ? err.status : -1;
    if (status === 401) return t('errorAuth');
    if (status === 403) return t('errorForbidden');
    if (status === 404) return t('errorNotFound');
    if (status === 0) return t('errorLoad');
    return (err && err.detail) || t('errorGeneric');
  }

  // ---- queues and list ---------------------------------------------------------------

  function renderQueueOptions() {
    var select = el.queueFilter;
    var current = select.value;
    while (select.options.length > 1) select.remove(1);
    state.queues.forEach(function (q) {
      var opt = document.createElement('option');
      opt.value = q.name;
      opt.textContent = queueLabel(q.name);
      select.appendChild(opt);
    });
    select.value = current;
    if (select.value !== current) select.value = '';
  }

  function loadQueues() {
    var gen = state.generation;
    return api('GET', '/api/queues').then(
      function (queues) {
        if (gen !== state.generation) return;
        state.queues = Array.isArray(queues) ? queues : [];
        renderQueueOptions();
        renderList();
        if (state.detail) renderDetail();
      },
      function (err) {
        if (gen === state.generation) say(errorText(err), 'error');
      }
    );
  }

  function listPath() {
    var params = new URLSearchParams();
    params.set('status', el.statusFilter.value || 'open');
    if (el.queueFilter.value) params.set('queue', el.queueFilter.value);
    return '/api/tickets?' + params.toString();
  }

  /* One list request at a time; a refresh asked for meanwhile runs once after it. */
  function loadList() {
    if (state.listLoading) {
      state.listAgain = true;
      return state.listLoading;
    }
    el.list.setAttribute('aria-busy', 'true');
    var gen = state.generation;
    state.listLoading = api('GET', listPath())
      .then(function (tickets) {
        if (gen !== state.generation) return;
        tickets = Array.isArray(tickets) ? tickets : [];
        announceNew(tickets);
        state.tickets = tickets;
        renderList();
      })
      .catch(function (err) {
        if (gen === state.generation) say(errorText(err), 'error');
      })
      .then(function () {
        el.list.removeAttribute('aria-busy');
        state.listLoading = null;
        if (state.listAgain) {
          state.listAgain = false;
          return loadList();
        }
        return undefined;
      });
    return state.listLoading;
  }

  function announceNew(tickets) {
    if (state.known === null) {
      state.known = new Set(tickets.map(function (x) { return x.id; }));
      return;
    }
    var fresh = tickets.filter(function (x) {
      return !state.known.has(x.id) && x.status === 'open';
    });
    tickets.forEach(function (x) {
      state.known.add(x.id);
    });
    if (fresh.length) {
      announce(
        fresh
          .map(function (x) {
            return t(x.urgent ? 'newUrgentTicket' : 'newTicket', { case: x.case_number });
          })
          .join('. ')
      );
    }
  }

  function renderTicketButton(ticket) {
    var button = node('button', 'ticket' + (ticket.urgent ? ' ticket--urgent' : ''));
    button.type = 'button';
    button.setAttribute('data-id', String(ticket.id));
    if (ticket.id === state.openId) button.setAttribute('aria-current', 'true');

    var top = node('span', 'ticket__top');
    top.appendChild(node('span', 'ticket__case', ticket.case_number));
    if (ticket.urgent) {
      var badge = node('span', 'badge badge--urgent');
      badge.appendChild(node('span', 'badge__icon', '!'));
      badge.lastChild.setAttribute('aria-hidden', 'true');
      badge.appendChild(document.createTextNode(' ' + t('urgent')));
      top.appendChild(badge);
    }
    if (ticket.status !== 'open') {
      top.appendChild(node('span', 'badge badge--' + (ticket.status === 'resolved' ? 'resolved' : 'other'), lookup('st', ticket.status)));
    }
    button.appendChild(top);

    button.appendChild(
      node('span', 'ticket__meta', queueLabel(ticket.queue) + ' · ' + lookup('reasons', ticket.reason))
    );

    var line = node('span', 'ticket__meta');
    line.appendChild(
      document.createTextNode(
        lookup('languages', ticket.language) + ' · ' + lookup('channels', ticket.channel) + ' · '
      )
    );
    var age = node('time', 'ticket__age', formatAge(ticket.created_at));
    age.dateTime = ticket.created_at;
    line.appendChild(age);
    button.appendChild(line);

    if (ticket.preview) {
      var p = node('span', 'ticket__preview', preview(ticket.preview));
      var lang = textLang(ticket.language);
      if (lang) p.lang = lang;
      button.appendChild(p);
    }
    return button;
  }

  function renderList() {
    var focusedId = null;
    var active = document.activeElement;
    if (active && active.classList && active.classList.contains('ticket') && el.list.contains(active)) {
      focusedId = active.getAttribute('data-id');
    }
    el.list.textContent = '';
    state.tickets.forEach(function (ticket) {
      var li = document.createElement('li');
      li.appendChild(renderTicketButton(ticket));
      el.list.appendChild(li);
    });
    var n = state.tickets.length;
    el.count.textContent = state.known === null ? t('loading') : n === 0 ? t('countNone') : n === 1 ? t('countOne') : t('count', { n: n });
    if (focusedId !== null) {
      var again = el.list.querySelector('.ticket[data-id="' + focusedId + '"]');
      if (again) again.focus();
      else el.listTitle.focus();
    }
  }

  function updateAges() {
    var ages = document.querySelectorAll('time.ticket__age');
    for (var i = 0; i < ages.length; i++) ages[i].textContent = formatAge(ages[i].dateTime);
  }

  // ---- detail ------------------------------------------------------------------------

  function fact(dl, label, value, lang) {
    dl.appendChild(node('dt', null, label));
    var dd = node('dd', null, value);
    if (lang) dd.lang = lang;
    dl.appendChild(dd);
    return dd;
  }

  function addressText(d) {
    var address = String(d.address || '');
    var i = address.indexOf(':');
    var channel = i >= 0 ? address.slice(0, i) : d.channel;
    if (channel === 'web') return t('webAddress');
    return i >= 0 ? address.slice(i + 1) : address || t('none');
  }

  function renderTranscript(messages, lang) {
    el.transcript.textContent = '';
    (Array.isArray(messages) ? messages : []).forEach(function (m) {
      var role = ROLE_KEYS[m.role] ? m.role : 'system';
      var li = node('li', 'tmsg tmsg--' + role);
      var meta = node('p', 'tmsg__meta');
      var who = node('span', 'tmsg__who', t(ROLE_KEYS[role]) + (m.author ? ' (' + m.author + ')' : ''));
      meta.appendChild(who);
      meta.appendChild(document.createTextNode(' · '));
      var time = node('time', null, formatDate(m.created_at));
      time.dateTime = m.created_at;
      meta.appendChild(time);
      if (role === 'agent' && m.status) {
        meta.appendChild(
          document.createTextNode(' · ' + t('delivery', { s: lookup('deliveries', m.status) }))
        );
      }
      li.appendChild(meta);
      var text = node('p', 'tmsg__text', m.text);
      if (role === 'resident' && lang) text.lang = lang;
      li.appendChild(text);
      if (Array.isArray(m.sources) && m.sources.length) {
        var list = node('ul', 'tmsg__sources');
        sourceList(list, m.sources);
        li.appendChild(list);
      }
      el.transcript.appendChild(li);
    });
  }

  function renderDetail() {
    var d = state.detail;
    if (!d) {
      el.detail.hidden = true;
      el.detailHint.hidden = false;
      el.detailTitle.textContent = t('noTicket');
      return;
    }
    var lang = textLang(d.language);
    el.detail.hidden = false;
    el.detailHint.hidden = true;
    el.detailTitle.textContent = t('ticketTitle', { case: d.case_number });

    el.urgentBanner.hidden = !d.urgent;
    el.urgentBanner.textContent = d.urgent ? t('urgentBanner') : '';

    var dl = el.facts;
    dl.textContent = '';
    var statusDd = fact(dl, t('fStatus'), lookup('st', d.status));
    statusDd.id = 'ticket-status';
    statusDd.className = 'fact-status fact-status--' + (d.status === 'resolved' ? 'resolved' : 'open');
    fact(dl, t('fQueue'), queueLabel(d.queue));
    fact(dl, t('fReason'), lookup('reasons', d.reason));
    fact(dl, t('fDepartment'), d.department || t('none'));
    fact(dl, t('fConfidence'), formatPercent(d.confidence));
    fact(dl, t('fLanguage'), lookup('languages', d.language));
    fact(dl, t('fChannel'), lookup('channels', d.channel));
    fact(dl, t('fAddress'), addressText(d));
    fact(dl, t('fCreated'), formatDate(d.created_at));
    fact(dl, t('fFirstResponse'), formatDate(d.first_response_at));
    if (d.status === 'resolved' || d.resolved_at) {
      fact(
        dl,
        t('fResolved'),
        d.resolved_by ? t('resolvedBy', { when: formatDate(d.resolved_at), who: d.resolved_by }) : formatDate(d.resolved_at)
      );
    }

    if (d.ai_draft) {
      el.draft.textContent = d.ai_draft;
      el.draft.classList.remove('draft--none');
      if (lang) el.draft.lang = lang;
      else el.draft.removeAttribute('lang');
    } else {
      el.draft.textContent = t('noDraft');
      el.draft.classList.add('draft--none');
      el.draft.removeAttribute('lang');
    }
    var hasSources = sourceList(el.sources, d.sources) > 0;
    el.sources.hidden = !hasSources;
    el.sourcesTitle.hidden = !hasSources;

    renderTranscript(d.transcript, lang);

    var closed = d.status === 'resolved';
    el.reply.disabled = closed;
    el.reply.lang = lang || state.lang;
    el.useDraft.disabled = closed || !d.ai_draft;
    el.sendReply.disabled = closed;
    el.resolve.disabled = closed;
    el.replyHint.textContent = t(closed ? 'replyClosedHint' : 'replyHint');

    var current = el.list.querySelectorAll('.ticket');
    for (var i = 0; i < current.length; i++) {
      if (current[i].getAttribute('data-id') === String(d.id)) current[i].setAttribute('aria-current', 'true');
      else current[i].removeAttribute('aria-current');
    }
  }

  function openTicket(id, moveFocus) {
    if (state.openId !== null && state.openId !== id) state.drafts.set(state.openId, el.reply.value);
    var switching = state.openId !== id;
    state.openId = id;
    if (switching) el.reply.value = state.drafts.get(id) || '';
    try {
      window.history.replaceState(null, '', '#ticket-' + id);
    } catch (e) {
      /* not important */
    }
    return loadDetail(id).then(
      function (shown) {
        if (shown && moveFocus) el.detailTitle.focus();
      },
      function (err) {
        if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
          state.openId = null;
          state.detail = null;
          renderDetail();
          forgetHash();
        }
        say(errorText(err), 'error');
      }
    );
  }

  function forgetHash() {
    try {
      window.history.replaceState(null, '', window.location.pathname + window.location.search);
    } catch (e) {
      /* not important */
    }
  }

  /* Fetches and shows ticket id; resolves true if shown, false if the answer came too late
   * (another ticket opened, or signed out meanwhile); rejects only while still current. */
  function loadDetail(id) {
    var gen = state.generation;
    function current() {
      return state.openId === id && gen === state.generation;
    }
    return api('GET', ticketPath(id)).then(
      function (detail) {
        if (!current()) return false;
        state.detail = detail;
        renderDetail();
        return true;
      },
      function (err) {
        if (!current()) return false;
        throw err;
      }
    );
  }

  function refreshOpen() {
    if (state.openId === null) return Promise.resolve();
    return loadDetail(state.openId).catch(function () {
      /* the next event or action tries again */
    });
  }

  function refreshAll() {
    return Promise.all([loadList(), refreshOpen()]);
  }

  function scheduleRefresh() {
    window.clearTimeout(state.refreshTimer);
    state.refreshTimer = window.setTimeout(refreshAll, 150);
  }

  // ---- actions -----------------------------------------------------------------------

  function sendReply() {
    var d = state.detail;
    if (!d || state.busy) return;
    var text = el.reply.value.trim();
    if (!text) {
      say(t('replyEmpty'), 'error');
      el.reply.focus();
      return;
    }
    state.busy = true;
    el.replyForm.setAttribute('aria-busy', 'true');
    say(t('sending'), 'info');
    api('POST', ticketPath(d.id, '/reply'), { text: text })
      .then(function (res) {
        if (state.openId === d.id) el.reply.value = '';
        state.drafts.delete(d.id);
        say(t(res && res.queued === false ? 'replyStored' : 'replySent'), 'success');
        return refreshAll();
      })
      .catch(function (err) {
        if (err instanceof ApiError && err.status === 409) say(t('replyConflict'), 'error');
        else say(errorText(err), 'error');
        return refreshAll();
      })
      .then(function () {
        state.busy = false;
        el.replyForm.removeAttribute('aria-busy');
      });
  }

  function resolveTicket() {
    var d = state.detail;
    if (!d || state.busy) return;
    state.busy = true;
    say(t('resolving'), 'info');
    api('POST', ticketPath(d.id, '/resolve'))
      .then(function (detail) {
        if (state.openId === d.id) {
          state.detail = detail;
          renderDetail();
          el.detailTitle.focus();
        }
        say(t('resolved', { case: d.case_number }), 'success');
        return loadList();
      })
      .catch(function (err) {
        say(errorText(err), 'error');
      })
      .then(function () {
        state.busy = false;
      });
  }

  // ---- live updates ------------------------------------------------------------------

  function closeEvents() {
    window.clearTimeout(state.reopenTimer);
    if (state.events) state.events.close();
    state.events = null;
  }

  function connectEvents() {
    closeEvents();
    if (typeof window.EventSource !== 'function') return;
    var source = new EventSource('/api/tickets/events');
    state.events = source;
    source.addEventListener('ready', function () {
      setLive('on');
      scheduleRefresh();
    });
    source.addEventListener('ticket', scheduleRefresh);
    source.addEventListener('error', function () {
      if (state.events !== source) return;
      setLive('lost');
      if (source.readyState === EventSource.CLOSED) {
        state.events = null;
        // Refused: perhaps the session ended (then the sign-in form), else try again later.
        api('GET', '/api/auth/me').then(
          function () {
            if (state.me) state.reopenTimer = window.setTimeout(connectEvents, 5000);
          },
          function (err) {
            if (!state.me) return;
            if (err instanceof ApiError && err.status === 401) showLogin('sessionExpired', 'error');
            else state.reopenTimer = window.setTimeout(connectEvents, 5000);
          }
        );
      }
    });
  }

  // ---- signing in and out ------------------------------------------------------------

  function renderAccount() {
    el.accountName.textContent = state.me ? t('signedInAs', { name: state.me.username }) : '';
    // Admins tune the handoff thresholds on their own page.
    var admin = !!(state.me && state.me.role === 'admin');
    el.adminLink.hidden = !admin;
    el.adminSep.hidden = !admin;
  }

  function loginSay(key, kind, values) {
    state.loginMessage = key ? { key: key, kind: kind || 'info', values: values || null } : null;
    renderLoginMessage();
  }

  function renderLoginMessage() {
    var m = state.loginMessage;
    el.loginMessage.setAttribute('data-kind', m ? m.kind : 'info');
    el.loginMessage.textContent = m ? t(m.key, m.values || undefined) : '';
  }

  function markInvalid(input, invalid) {
    if (invalid) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }

  function stopConsole() {
    state.generation++;
    state.me = null;
    closeEvents();
    window.clearTimeout(state.refreshTimer);
    // Nothing of the residents' data stays on a signed-out page.
    state.tickets = [];
    state.known = null;
    state.listAgain = false;
    state.openId = null;
    state.detail = null;
    el.list.textContent = '';
    el.status.textContent = '';
    el.announcer.textContent = '';
    renderDetail();
  }

  /* The console and its top bar parts, or the sign-in form. */
  function showView(signedIn) {
    el.loginView.hidden = signedIn;
    [el.consoleView, el.account, el.live, el.skipLink].forEach(function (part) {
      part.hidden = !signedIn;
    });
  }

  function showLogin(messageKey, kind) {
    var wasSignedIn = state.me !== null;
    stopConsole();
    showView(false);
    el.loginPassword.value = '';
    loginSay(null);
    renderAccount();
    (el.loginUsername.value ? el.loginPassword : el.loginUsername).focus();
    if (messageKey) {
      // Set once the region is shown, so that screen readers announce it.
      window.setTimeout(function () {
        if (!state.me) loginSay(messageKey, kind);
      }, wasSignedIn ? 50 : 0);
    }
  }

  function startConsole(me, moveFocus) {
    state.generation++;
    if (state.lastUser !== null && state.lastUser !== me.username) state.drafts = new Map();
    state.me = me;
    state.lastUser = me.username;
    loginSay(null);
    showView(true);
    renderAccount();
    setLive('connecting');
    renderList();
    renderDetail();
    if (moveFocus) el.listTitle.focus();
    loadQueues().then(function () {
      if (state.storedQueue && el.queueFilter.value !== state.storedQueue) {
        el.queueFilter.value = state.storedQueue;
        if (el.queueFilter.value !== state.storedQueue) el.queueFilter.value = '';
      }
      loadList();
    });
    var m = /^#ticket-(\d+)$/.exec(window.location.hash);
    if (m) openTicket(Number(m[1]), false);
    connectEvents();
    if (state.agesTimer === null) state.agesTimer = window.setInterval(updateAges, 30000);
  }

  function signIn() {
    if (state.loginBusy) return;
    var username = el.loginUsername.value.trim();
    var password = el.loginPassword.value;
    markInvalid(el.loginUsername, !username);
    markInvalid(el.loginPassword, !password);
    if (!username || !password) {
      loginSay('loginMissing', 'error');
      (username ? el.loginPassword : el.loginUsername).focus();
      return;
    }
    state.loginBusy = true;
    el.loginForm.setAttribute('aria-busy', 'true');
    loginSay('signingIn', 'info');
    api('POST', '/api/auth/login', { username: username, password: password })
      .then(function (me) {
        state.csrf = (me && me.csrf_token) || '';
        el.loginPassword.value = '';
        startConsole(me, true);
      })
      .catch(function (err) {
        var status = err instanceof ApiError ? err.status : -1;
        if (status === 429) loginSay('loginThrottled', 'error', { s: err.retryAfter || 60 });
        else if (status === 401) loginSay('loginFailed', 'error');
        else loginSay(status === 0 ? 'errorLoad' : 'errorGeneric', 'error');
        el.loginPassword.value = '';
        el.loginPassword.focus();
      })
      .then(function () {
        state.loginBusy = false;
        el.loginForm.removeAttribute('aria-busy');
      });
  }

  function signOut() {
    api('POST', '/api/auth/logout')
      .catch(function () {
        /* the form shows anyway; an unended session expires by itself */
      })
      .then(function () {
        state.drafts = new Map();
        state.lastUser = null;
        showLogin('signedOut', 'success');
      });
  }

  // ---- language ----------------------------------------------------------------------

  function saveStore() {
    N.saveStore(STORE_KEY, {
      language: state.lang,
      queue: el.queueFilter.value,
      status: el.statusFilter.value
    });
  }

  function applyLanguage(lang) {
    state.lang = N.supported(lang) ? lang : 'fi';
    N.applyTexts(state.lang, t);
    setLive(state.live);
    renderAccount();
    renderLoginMessage();
    renderQueueOptions();
    renderList();
    renderDetail();
    saveStore();
  }

  // ---- wiring ------------------------------------------------------------------------

  function init() {
    [
      ['skipLink', 'skip-link'],
      ['account', 'account'],
      ['accountName', 'account-name'],
      ['signOut', 'sign-out'],
      ['adminLink', 'admin-link'],
      ['adminSep', 'admin-sep'],
      ['loginView', 'login-view'],
      ['loginForm', 'login-form'],
      ['loginUsername', 'login-username'],
      ['loginPassword', 'login-password'],
      ['loginMessage', 'login-message'],
      ['consoleView', 'console-view'],
      ['status', 'status'],
      ['announcer', 'announcer'],
      ['live', 'live'],
      ['liveText', 'live-text'],
      ['queueFilter', 'queue-filter'],
      ['statusFilter', 'status-filter'],
      ['count', 'ticket-count'],
      ['list', 'ticket-list'],
      ['listTitle', 'ticket-list-title'],
      ['detailTitle', 'detail-title'],
      ['detailHint', 'detail-hint'],
      ['detail', 'detail'],
      ['urgentBanner', 'urgent-banner'],
      ['facts', 'facts'],
      ['draft', 'draft'],
      ['sources', 'sources'],
      ['sourcesTitle', 'sources-title'],
      ['transcript', 'transcript'],
      ['replyForm', 'reply-form'],
      ['reply', 'reply'],
      ['replyHint', 'reply-hint'],
      ['useDraft', 'use-draft'],
      ['sendReply', 'send-reply'],
      ['resolve', 'resolve']
    ].forEach(function (pair) {
      el[pair[0]] = document.getElementById(pair[1]);
    });

    var stored = N.loadStore(STORE_KEY);
    if (['open', 'resolved', 'all'].indexOf(stored.status) >= 0) el.statusFilter.value = stored.status;
    state.storedQueue = typeof stored.queue === 'string' ? stored.queue : '';
    applyLanguage(N.startLanguage(stored.language));

    el.list.addEventListener('click', function (ev) {
      var button = ev.target.closest('.ticket');
      if (!button) return;
      // Keyboard activation (Enter/Space) reports detail 0: then focus moves to the ticket.
      openTicket(Number(button.getAttribute('data-id')), true);
    });
    [el.queueFilter, el.statusFilter].forEach(function (select) {
      select.addEventListener('change', function () {
        saveStore();
        loadList();
      });
    });
    el.replyForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      sendReply();
    });
    el.reply.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        sendReply();
      }
    });
    el.useDraft.addEventListener('click', function () {
      if (state.detail && state.detail.ai_draft) {
        el.reply.value = state.detail.ai_draft;
        el.reply.focus();
      }
    });
    el.resolve.addEventListener('click', resolveTicket);
    el.loginForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      signIn();
    });
    [el.loginUsername, el.loginPassword].forEach(function (input) {
      input.addEventListener('input', function () {
        if (input.value) markInvalid(input, false);
      });
    });
    el.signOut.addEventListener('click', signOut);
    N.onLanguageSwitch(applyLanguage);

    api('GET', '/api/auth/me').then(
      function (me) {
        startConsole(me, false);
      },
      function (err) {
        var status = err instanceof ApiError ? err.status : -1;
        showLogin(status === 401 ? null : 'errorLoad', 'error');
      }
    );
  }

  N.ready(init);
})();
