/*
 * Neuvonta admin: the AI answer thresholds and rules, and their change history.
 *
 * The data come from /api/admin/thresholds (admins only): signed out (401) or not an admin
 * (403), the page says where to sign in. A change sends the version it was based on and
 * the neuvonta_csrf cookie as the X-CSRF-Token header; 409 means someone changed the
 * thresholds meanwhile. Every text is set with textContent. Shared helpers come from
 * /static/common.js (window.Neuvonta), loaded before this file.
 */
(function () {
  'use strict';

  var N = window.Neuvonta;
  var node = N.node;
  var STORE_KEY = 'neuvonta.admin';

  var T = {
    fi: {
      pageTitle: 'Vastausrajat – Neuvonta ylläpito',
      navLabel: 'Ylläpito',
      analyticsLink: 'Palvelun tunnusluvut ja tietoaukot',
      skip: 'Siirry sisältöön',
      app: 'Neuvonta · ylläpito',
      title: 'Tekoälyn vastausrajat',
      loading: 'Ladataan…',
      signInTitle: 'Kirjaudu sisään',
      signInNeeded: 'Tämä sivu on ylläpitäjille. Kirjaudu ensin asiakaspalvelun työpöydällä ylläpitäjän tunnuksella ja palaa sitten tälle sivulle.',
      adminsOnly: 'Vain ylläpitäjät voivat nähdä ja muuttaa vastausrajoja. Kirjaudu ylläpitäjän tunnuksella.',
      signInLink: 'Kirjaudu asiakaspalvelun työpöydällä',
      loadFailed: 'Tietojen haku epäonnistui. Yritä hetken päästä uudelleen.',
      formTitle: 'Rajat ja säännöt',
      intro: 'Raja on pienin varmuus, jolla tekoäly vastaa itse. Pienemmällä varmuudella asia siirtyy ihmiselle. 1 tarkoittaa, että jonossa vastaa aina ihminen. Muutos tulee voimaan muutamassa sekunnissa.',
      defaultLabel: 'Oletusraja',
      defaultHint: 'Luku 0–1. Koskee jonoja, joille ei ole omaa rajaa.',
      queuesLegend: 'Jonokohtaiset rajat',
      queueHint: 'Jätä tyhjäksi, niin jono käyttää oletusrajaa. ”Aina ihmiselle”: tekoäly ei vastaa jonossa itse.',
      colQueue: 'Jono',
      colThreshold: 'Raja',
      colAlways: 'Aina ihmiselle',
      alwaysFor: '{queue}: aina ihmiselle',
      placeholderDefault: 'oletus',
      noteLabel: 'Muutoksen syy (valinnainen)',
      save: 'Tallenna',
      saving: 'Tallennetaan…',
      reload: 'Hae uusimmat',
      versionInfo: 'Käytössä versio {version}: muuttanut {who} {when}.',
      versionZero: 'Käytössä versio 0: asetusten oletusarvot, ei muutoksia.',
      saved: 'Tallennettu: versio {version} on nyt käytössä.',
      savedNotLive: 'Tallennettu versiona {version}, mutta viestinvälitykseen ei saatu yhteyttä: reitittimet ottavat muutoksen käyttöön seuraavassa käynnistyksessään.',
      unchanged: 'Ei muutoksia: rajat olivat jo nämä (versio {version}).',
      reloaded: 'Uusimmat arvot haettu (versio {version}).',
      errorsTitle: 'Korjaa nämä ennen tallennusta:',
      errRequired: '{field}: anna luku väliltä 0–1.',
      errRange: '{field}: raja on luku väliltä 0–1 (1 = aina ihmiselle).',
      errNumber: '{field}: kirjoita luku väliltä 0–1.',
      errUnknownQueue: 'Tuntematon jono {name}.',
      errConflict: 'Joku muutti rajoja välillä (nyt versio {version}, {who}). Lomakkeella ovat nyt uusimmat arvot: tee muutoksesi uudelleen ja tallenna.',
      errForbidden: 'Tallennus estettiin. Kirjaudu uudelleen ylläpitäjän tunnuksella.',
      errFailed: 'Tallennus epäonnistui. Yritä uudelleen.',
      historyTitle: 'Muutoshistoria',
      colVersion: 'Versio',
      colWho: 'Kuka',
      colWhen: 'Milloin',
      colChanges: 'Muutokset',
      colNote: 'Syy',
      historyEmpty: 'Ei muutoksia vielä: käytössä ovat asetusten oletusarvot.',
      chDefault: 'Oletusraja {old} → {new}',
      chQueue: '{queue}: {old} → {new}',
      chAlwaysOn: '{queue}: aina ihmiselle',
      chAlwaysOff: '{queue}: tekoäly saa taas vastata',
      defaultWord: 'oletus'
    },
    sv: {
      pageTitle: 'Svarsgränser – Neuvonta administration',
      navLabel: 'Administration',
      analyticsLink: 'Tjänstens nyckeltal och kunskapsluckor',
      skip: 'Hoppa till innehållet',
      app: 'Neuvonta · administration',
      title: 'AI:ns svarsgränser',
      loading: 'Laddar…',
      signInTitle: 'Logga in',
      signInNeeded: 'Den här sidan är för administratörer. Logga först in i kundtjänstens arbetsvy med ett administratörskonto och återvänd sedan hit.',
      adminsOnly: 'Endast administratörer kan se och ändra svarsgränserna. Logga in med ett administratörskonto.',
      signInLink: 'Logga in i kundtjänstens arbetsvy',
      loadFailed: 'Uppgifterna kunde inte hämtas. Försök igen om en stund.',
      formTitle: 'Gränser och regler',
      intro: 'Gränsen är den minsta säkerhet med vilken AI:n svarar själv. Vid lägre säkerhet går ärendet till en människa. 1 betyder att en människa alltid svarar i kön. En ändring träder i kraft inom några sekunder.',
      defaultLabel: 'Standardgräns',
      defaultHint: 'Ett tal 0–1. Gäller köer utan egen gräns.',
      queuesLegend: 'Köspecifika gränser',
      queueHint: 'Lämna tomt så använder kön standardgränsen. ”Alltid till en människa”: AI:n svarar inte själv i kön.',
      colQueue: 'Kö',
      colThreshold: 'Gräns',
      colAlways: 'Alltid till en människa',
      alwaysFor: '{queue}: alltid till en människa',
      placeholderDefault: 'standard',
      noteLabel: 'Orsak till ändringen (valfritt)',
      save: 'Spara',
      saving: 'Sparar…',
      reload: 'Hämta de senaste',
      versionInfo: 'Version {version} används: ändrad av {who} {when}.',
      versionZero: 'Version 0 används: inställningarnas standardvärden, inga ändringar.',
      saved: 'Sparat: version {version} används nu.',
      savedNotLive: 'Sparat som version {version}, men meddelandeförmedlingen kunde inte nås: routrarna tar ändringen i bruk vid sin nästa start.',
      unchanged: 'Inga ändringar: gränserna var redan dessa (version {version}).',
      reloaded: 'De senaste värdena har hämtats (version {version}).',
      errorsTitle: 'Rätta dessa innan du sparar:',
      errRequired: '{field}: ange ett tal mellan 0 och 1.',
      errRange: '{field}: gränsen är ett tal mellan 0 och 1 (1 = alltid en människa).',
      errNumber: '{field}: skriv ett tal mellan 0 och 1.',
      errUnknownQueue: 'Okänd kö {name}.',
      errConflict: 'Någon ändrade gränserna under tiden (nu version {version}, {who}). Formuläret visar nu de senaste värdena: gör din ändring igen och spara.',
      errForbidden: 'Sparandet nekades. Logga in igen med ett administratörskonto.',
      errFailed: 'Sparandet misslyckades. Försök igen.',
      historyTitle: 'Ändringshistorik',
      colVersion: 'Version',
      colWho: 'Vem',
      colWhen: 'När',
      colChanges: 'Ändringar',
      colNote: 'Orsak',
      historyEmpty: 'Inga ändringar ännu: inställningarnas standardvärden används.',
      chDefault: 'Standardgräns {old} → {new}',
      chQueue: '{queue}: {old} → {new}',
      chAlwaysOn: '{queue}: alltid till en människa',
      chAlwaysOff: '{queue}: AI:n får svara igen',
      defaultWord: 'standard'
    },
    en: {
      pageTitle: 'Answer thresholds – Neuvonta admin',
      navLabel: 'Admin',
      analyticsLink: 'Service figures and knowledge gaps',
      skip: 'Skip to content',
      app: 'Neuvonta · admin',
      title: 'AI answer thresholds',
      loading: 'Loading…',
      signInTitle: 'Sign in',
      signInNeeded: 'This page is for admins. Sign in to the agent console with an admin account first, then come back to this page.',
      adminsOnly: 'Only admins can see and change the answer thresholds. Sign in with an admin account.',
      signInLink: 'Sign in to the agent console',
      loadFailed: 'Could not load the data. Try again in a moment.',
      formTitle: 'Thresholds and rules',
      intro: 'A threshold is the minimum confidence at which the AI answers on its own. Below it, the case goes to a person. 1 means a person always answers in that queue. A change takes effect within seconds.',
      defaultLabel: 'Default threshold',
      defaultHint: 'A number from 0 to 1. Applies to queues without a threshold of their own.',
      queuesLegend: 'Thresholds per queue',
      queueHint: 'Leave empty for the queue to use the default threshold. “Always to a person”: the AI does not answer in that queue on its own.',
      colQueue: 'Queue',
      colThreshold: 'Threshold',
      colAlways: 'Always to a person',
      alwaysFor: '{queue}: always to a person',
      placeholderDefault: 'default',
      noteLabel: 'Reason for the change (optional)',
      save: 'Save',
      saving: 'Saving…',
      reload: 'Load the latest',
      versionInfo: 'Version {version} in use: changed by {who} {when}.',
      versionZero: 'Version 0 in use: the configured defaults, never changed.',
      saved: 'Saved: version {version} is in use now.',
      savedNotLive: 'Saved as version {version}, but the message bus could not be reached: the routers take the change into use at their next start.',
      unchanged: 'Nothing changed: the thresholds were already these (version {version}).',
      reloaded: 'The latest values are loaded (version {version}).',
      errorsTitle: 'Correct these before saving:',
      errRequired: '{field}: give a number from 0 to 1.',
      errRange: '{field}: a threshold is a number from 0 to 1 (1 = always a person).',
      errNumber: '{field}: type a number from 0 to 1.',
      errUnknownQueue: 'Unknown queue {name}.',
      errConflict: 'Someone changed the thresholds meanwhile (now version {version}, {who}). The form shows the latest values now: make your change again and save.',
      errForbidden: 'Saving was refused. Sign in again with an admin account.',
      errFailed: 'Saving failed. Try again.',
      historyTitle: 'Change history',
      colVersion: 'Version',
      colWho: 'Who',
      colWhen: 'When',
      colChanges: 'Changes',
      colNote: 'Reason',
      historyEmpty: 'No changes yet: the configured defaults are in use.',
      chDefault: 'Default threshold {old} → {new}',
      chQueue: '{queue}: {old} → {new}',
      chAlwaysOn: '{queue}: always to a person',
      chAlwaysOff: '{queue}: the AI may answer again',
      defaultWord: 'default'
    }
  };

  var state = {
    lang: 'fi',
    denied: 0, // 401 or 403 once the API refused us
    queues: [], // [{name, label: {fi, sv, en}}]
    current: null, // the thresholds as last loaded or saved
    history: [],
    pageStatus: { key: 'loading', kind: '', params: null },
    saveStatus: null, // {key, kind, params}
    errors: [], // [{field: input id or '', key, params}]
    busy: false
  };

  var el = {};

  // ---- texts ---------------------------------------------------------------------------

  var translate = N.translator(T, function () {
    return state.lang;
  });

  /* The shared translator, with '–' for a missing value and the key for a missing text. */
  function t(key, params) {
    var values = null;
    if (params) {
      values = {};
      Object.keys(params).forEach(function (name) {
        values[name] = params[name] == null ? '–' : params[name];
      });
    }
    var text = translate(key, values);
    return text === undefined ? key : text;
  }

  function num(value) {
    if (value === null || value === undefined) return t('defaultWord');
    try {
      return new Intl.NumberFormat(N.locale(state.lang), { maximumFractionDigits: 3 }).format(value);
    } catch (e) {
      return String(value);
    }
  }

  function when(iso) {
    if (!iso) return '';
    var d = new Date(iso);
    try {
      return new Intl.DateTimeFormat(N.locale(state.lang), { dateStyle: 'medium', timeStyle: 'short' }).format(d);
    } catch (e) {
      return d.toLocaleString();
    }
  }

  function queueLabel(name) {
    for (var i = 0; i < state.queues.length; i++) {
      var q = state.queues[i];
      if (q.name === name) return (q.label && (q.label[state.lang] || q.label.fi)) || q.name;
    }
    return name;
  }

  // ---- the API -------------------------------------------------------------------------

  /* {status, data} for any answer; rejects only when the network failed. */
  var request = N.requestStatus;

  // ---- loading -------------------------------------------------------------------------

  function showDenied(status) {
    state.denied = status;
    state.pageStatus = null;
    render();
  }

  function load(announce) {
    return request('GET', '/api/admin/thresholds').then(function (r) {
      if (r.status === 401 || r.status === 403) return showDenied(r.status);
      if (r.status !== 200) throw new Error('thresholds ' + r.status);
      state.denied = 0;
      var current = r.data;
      var queues = state.queues.length
        ? Promise.resolve(null)
        : request('GET', '/api/queues').then(function (q) {
            if (q.status !== 200) throw new Error('queues ' + q.status);
            state.queues = q.data;
            buildQueueRows();
          });
      return Promise.all([queues, loadHistory()]).then(function () {
        state.current = current;
        state.pageStatus = null;
        fillForm();
        if (announce) state.saveStatus = { key: 'reloaded', kind: 'success', params: { version: current.version } };
        render();
      });
    });
  }

  function loadHistory() {
    return request('GET', '/api/admin/thresholds/history').then(function (r) {
      if (r.status === 200) state.history = r.data || [];
    });
  }

  function failed() {
    state.pageStatus = { key: 'loadFailed', kind: 'error', params: null };
    render();
  }

  // ---- the form ------------------------------------------------------------------------

  function inputId(queue) {
    return 'threshold-' + queue;
  }

  function buildQueueRows() {
    var body = el.queueRows;
    while (body.firstChild) body.removeChild(body.firstChild);
    state.queues.forEach(function (q) {
      var tr = node('tr');
      var th = node('th');
      th.scope = 'row';
      var label = node('label');
      label.htmlFor = inputId(q.name);
      label.id = 'label-' + q.name;
      th.appendChild(label);
      tr.appendChild(th);

      var td = node('td');
      var input = node('input');
      input.type = 'number';
      input.id = inputId(q.name);
      input.name = 'queue-' + q.name;
      input.min = '0';
      input.max = '1';
      input.step = '0.05';
      input.inputMode = 'decimal';
      input.setAttribute('data-queue', q.name);
      input.setAttribute('aria-describedby', 'queue-hint');
      td.appendChild(input);
      var err = node('span', 'field-error');
      err.id = 'error-' + q.name;
      td.appendChild(err);
      tr.appendChild(td);

      var check = node('td', 'check');
      var box = node('input');
      box.type = 'checkbox';
      box.id = 'always-' + q.name;
      box.name = 'always-' + q.name;
      box.setAttribute('data-queue', q.name);
      var boxLabel = node('label', 'visually-hidden');
      boxLabel.htmlFor = box.id;
      boxLabel.id = 'always-label-' + q.name;
      check.appendChild(box);
      check.appendChild(boxLabel);
      tr.appendChild(check);
      body.appendChild(tr);
    });
  }

  function fillForm() {
    var c = state.current;
    if (!c) return;
    el.defaultInput.value = String(c['default']);
    state.queues.forEach(function (q) {
      var input = document.getElementById(inputId(q.name));
      var box = document.getElementById('always-' + q.name);
      if (input) input.value = c.queues[q.name] === undefined ? '' : String(c.queues[q.name]);
      if (box) box.checked = c.always_handoff.indexOf(q.name) >= 0;
    });
    state.errors = [];
  }

  /* The form's values, or null after showing what is wrong. */
  function readForm() {
    var errors = [];
    function value(input, label, required) {
      var raw = input.value.trim();
      if (input.validity && input.validity.badInput) {
        errors.push({ field: input.id, key: 'errNumber', params: { field: label } });
        return null;
      }
      if (raw === '') {
        if (required) errors.push({ field: input.id, key: 'errRequired', params: { field: label } });
        return null;
      }
      var n = Number(raw.replace(',', '.'));
      if (!isFinite(n) || n < 0 || n > 1) {
        errors.push({ field: input.id, key: 'errRange', params: { field: label } });
        return null;
      }
      return n;
    }
    var result = {
      version: state.current ? state.current.version : undefined,
      default: value(el.defaultInput, t('defaultLabel'), true),
      queues: {},
      always_handoff: [],
      note: el.note.value.trim() || null
    };
    state.queues.forEach(function (q) {
      var input = document.getElementById(inputId(q.name));
      var v = value(input, queueLabel(q.name), false);
      if (v !== null) result.queues[q.name] = v;
      if (document.getElementById('always-' + q.name).checked) result.always_handoff.push(q.name);
    });
    state.errors = errors;
    return errors.length ? null : result;
  }

  function fieldFor(loc) {
    // FastAPI's shape: ["body", "default"], ["body", "queues", name], ["body", "always_handoff", i]
    if (!loc || loc[0] !== 'body') return { field: '', label: '' };
    if (loc[1] === 'default') return { field: 'default-threshold', label: t('defaultLabel') };
    if (loc[1] === 'queues' && loc.length > 2) return { field: inputId(loc[2]), label: queueLabel(loc[2]) };
    return { field: '', label: '' };
  }

  function serverErrors(detail) {
    if (!Array.isArray(detail)) return [{ field: '', key: 'errFailed', params: null }];
    return detail.map(function (d) {
      var f = fieldFor(d.loc);
      if (d.type === 'threshold_range') return { field: f.field, key: 'errRange', params: { field: f.label } };
      if (d.type === 'unknown_queue') return { field: '', key: 'errUnknownQueue', params: { name: d.input } };
      if (f.field) return { field: f.field, key: 'errNumber', params: { field: f.label } };
      return { field: '', key: 'raw', params: { text: String(d.msg || '') } };
    });
  }

  function save(ev) {
    ev.preventDefault();
    if (state.busy) return;
    state.saveStatus = null;
    var body = readForm();
    if (!body) {
      render();
      focusFirstError();
      return;
    }
    state.busy = true;
    render();
    request('PUT', '/api/admin/thresholds', body)
      .then(function (r) {
        if (r.status === 200) {
          state.current = r.data;
          state.errors = [];
          el.note.value = '';
          fillForm();
          var key = !r.data.changed ? 'unchanged' : r.data.live ? 'saved' : 'savedNotLive';
          state.saveStatus = { key: key, kind: r.data.live || !r.data.changed ? 'success' : 'warning', params: { version: r.data.version } };
          return loadHistory();
        }
        if (r.status === 401) return showDenied(401);
        if (r.status === 403) {
          state.errors = [{ field: '', key: 'errForbidden', params: null }];
          return null;
        }
        if (r.status === 409) {
          return request('GET', '/api/admin/thresholds').then(function (fresh) {
            if (fresh.status === 200) {
              state.current = fresh.data;
              fillForm();
            }
            var c = state.current || {};
            state.errors = [{ field: '', key: 'errConflict', params: { version: c.version, who: c.changed_by } }];
            return loadHistory();
          });
        }
        if (r.status === 422) {
          state.errors = serverErrors(r.data && r.data.detail);
          return null;
        }
        state.errors = [{ field: '', key: 'errFailed', params: null }];
        return null;
      })
      .catch(function () {
        state.errors = [{ field: '', key: 'errFailed', params: null }];
      })
      .then(function () {
        state.busy = false;
        render();
        if (state.errors.length) focusFirstError();
      });
  }

  function focusFirstError() {
    for (var i = 0; i < state.errors.length; i++) {
      var input = state.errors[i].field && document.getElementById(state.errors[i].field);
      if (input) {
        input.focus();
        return;
      }
    }
  }

  // ---- rendering -----------------------------------------------------------------------

  function setStatus(target, status) {
    target.textContent = status ? t(status.key, status.params) : '';
    if (status && status.kind) target.setAttribute('data-kind', status.kind);
    else target.removeAttribute('data-kind');
  }

  function errorText(e) {
    return e.key === 'raw' ? e.params.text : t(e.key, e.params);
  }

  function renderErrors() {
    var box = el.errors;
    while (box.firstChild) box.removeChild(box.firstChild);
    var inputs = el.form.querySelectorAll('input[type="number"]');
    for (var i = 0; i < inputs.length; i++) {
      inputs[i].removeAttribute('aria-invalid');
      var own = document.getElementById(inputs[i] === el.defaultInput ? 'error-default' : 'error-' + inputs[i].getAttribute('data-queue'));
      if (own) own.textContent = '';
    }
    if (!state.errors.length) return;
    box.appendChild(node('p', null, t('errorsTitle')));
    var list = node('ul');
    state.errors.forEach(function (e) {
      list.appendChild(node('li', null, errorText(e)));
      var input = e.field && document.getElementById(e.field);
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        var own = document.getElementById(input === el.defaultInput ? 'error-default' : 'error-' + input.getAttribute('data-queue'));
        if (own && !own.textContent) own.textContent = errorText(e);
      }
    });
    box.appendChild(list);
  }

  function renderQueueLabels() {
    state.queues.forEach(function (q) {
      var label = document.getElementById('label-' + q.name);
      if (label) label.textContent = queueLabel(q.name);
      var boxLabel = document.getElementById('always-label-' + q.name);
      if (boxLabel) boxLabel.textContent = t('alwaysFor', { queue: queueLabel(q.name) });
      var input = document.getElementById(inputId(q.name));
      if (input) {
        input.placeholder = t('placeholderDefault');
        input.setAttribute('aria-describedby', 'queue-hint error-' + q.name);
      }
    });
  }

  function renderVersion() {
    var c = state.current;
    if (!c) {
      el.versionInfo.textContent = '';
    } else if (c.version === 0) {
      el.versionInfo.textContent = t('versionZero');
    } else {
      el.versionInfo.textContent = t('versionInfo', { version: c.version, who: c.changed_by, when: when(c.changed_at) });
    }
  }

  function changeText(ch) {
    var q = ch.queue ? queueLabel(ch.queue) : '';
    if (ch.what === 'default') return t('chDefault', { old: num(ch.old), new: num(ch['new']) });
    if (ch.what === 'queue') return t('chQueue', { queue: q, old: num(ch.old), new: num(ch['new']) });
    return t(ch['new'] ? 'chAlwaysOn' : 'chAlwaysOff', { queue: q });
  }

  function cell(tr, text, className) {
    return tr.appendChild(node('td', className, text));
  }

  function renderHistory() {
    var body = el.historyRows;
    while (body.firstChild) body.removeChild(body.firstChild);
    state.history.forEach(function (h) {
      var tr = node('tr');
      cell(tr, String(h.version), 'num');
      cell(tr, h.changed_by);
      cell(tr, when(h.changed_at));
      var td = cell(tr, '');
      var ul = node('ul');
      h.changes.forEach(function (ch) {
        ul.appendChild(node('li', null, changeText(ch)));
      });
      td.appendChild(ul);
      cell(tr, h.note || '');
      body.appendChild(tr);
    });
    el.historyEmpty.hidden = state.history.length > 0;
  }

  function render() {
    el.signedOut.hidden = !state.denied;
    el.adminView.hidden = !!state.denied || !state.current;
    if (state.denied) el.signedOutText.textContent = t(state.denied === 403 ? 'adminsOnly' : 'signInNeeded');
    setStatus(el.pageStatus, state.pageStatus);
    setStatus(el.saveStatus, state.saveStatus);
    el.save.disabled = state.busy;
    el.save.textContent = t(state.busy ? 'saving' : 'save');
    renderQueueLabels();
    renderVersion();
    renderErrors();
    renderHistory();
    // The what-if panel (whatif.js) follows the form: new values, or a new language.
    el.form.dispatchEvent(new CustomEvent('neuvonta:rendered'));
  }

  // ---- language ------------------------------------------------------------------------

  function applyLanguage(lang, remember) {
    state.lang = N.supported(lang) ? lang : 'fi';
    N.applyTexts(state.lang, t);
    if (remember) N.saveStore(STORE_KEY, { language: state.lang });
    render();
  }

  // ---- start ---------------------------------------------------------------------------

  function start() {
    el.form = document.getElementById('thresholds-form');
    el.defaultInput = document.getElementById('default-threshold');
    el.note = document.getElementById('note');
    el.queueRows = document.getElementById('queue-rows');
    el.errors = document.getElementById('form-errors');
    el.save = document.getElementById('save');
    el.reload = document.getElementById('reload');
    el.saveStatus = document.getElementById('save-status');
    el.pageStatus = document.getElementById('page-status');
    el.versionInfo = document.getElementById('version-info');
    el.historyRows = document.getElementById('history-rows');
    el.historyEmpty = document.getElementById('history-empty');
    el.signedOut = document.getElementById('signed-out');
    el.signedOutText = document.getElementById('signed-out-text');
    el.adminView = document.getElementById('admin-view');

    var defaultError = node('span', 'field-error');
    defaultError.id = 'error-default';
    el.defaultInput.parentNode.appendChild(defaultError);
    el.defaultInput.setAttribute('aria-describedby', 'default-hint error-default');

    el.form.addEventListener('submit', save);
    el.reload.addEventListener('click', function () {
      state.errors = [];
      state.saveStatus = null;
      load(true).catch(failed);
    });
    N.onLanguageSwitch(function (lang) {
      applyLanguage(lang, true);
    });
    applyLanguage(N.startLanguage(N.loadStore(STORE_KEY).language), false);
    load(false).catch(failed);
  }

  N.ready(start);
})();
