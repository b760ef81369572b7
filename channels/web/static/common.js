/* Neuvonta shared page helpers for the resident chat, the agent console and the admin
 * pages, exposed as window.Neuvonta. Load it (defer) before the page script. No framework,
 * no build step.
 *
 * No user-visible strings live here: each page passes its own fi/sv/en dictionary.
 * Security: everything is put on the page with textContent / createElement only, never as
 * HTML; only http(s) addresses become links.
 */
(function () {
  'use strict';

  /* The languages of both pages, in the order of the language switcher. */
  var LANGS = ['fi', 'sv', 'en'];
  var LOCALES = { fi: 'fi-FI', sv: 'sv-FI', en: 'en-GB' };

  function has(object, key) {
    return Object.prototype.hasOwnProperty.call(object, key);
  }

  // ---- language ----------------------------------------------------------------------

  /* t(key, values) over dict ({fi: {...}, sv: {...}, en: {...}}) in the language that
   * getLang() names (Finnish if unknown); a key the table lacks falls back to English.
   * {name} placeholders are filled from values. */
  function translator(dict, getLang) {
    return function t(key, values) {
      var table = dict[getLang()] || dict.fi;
      var text = has(table, key) ? table[key] : dict.en[key];
      if (values && typeof text === 'string') {
        text = text.replace(/\{(\w+)\}/g, function (_, name) {
          return has(values, name) ? String(values[name]) : '';
        });
      }
      return text;
    };
  }

  function supported(lang) {
    return LANGS.indexOf(lang) >= 0;
  }

  function browserLanguage() {
    var wanted = [];
    if (navigator.languages) wanted = wanted.concat(Array.prototype.slice.call(navigator.languages));
    if (navigator.language) wanted.push(navigator.language);
    for (var i = 0; i < wanted.length; i++) {
      var code = String(wanted[i] || '').toLowerCase().split('-')[0];
      if (supported(code)) return code;
    }
    return 'fi';
  }

  /* The language to start in: the stored choice, else the browser's, else Finnish. */
  function startLanguage(stored) {
    return supported(stored) ? stored : browserLanguage();
  }

  /* Puts the page in lang: <html lang>, the title (key pageTitle), every [data-i18n]
   * element's text and the pressed state of the language buttons. */
  function applyTexts(lang, t) {
    document.documentElement.lang = lang;
    document.title = t('pageTitle');
    var nodes = document.querySelectorAll('[data-i18n]');
    for (var i = 0; i < nodes.length; i++) nodes[i].textContent = t(nodes[i].getAttribute('data-i18n'));
    var buttons = document.querySelectorAll('.lang-switch__button');
    for (var j = 0; j < buttons.length; j++) {
      buttons[j].setAttribute('aria-pressed', buttons[j].getAttribute('data-lang') === lang ? 'true' : 'false');
    }
  }

  /* choose(code) when a language button is pressed. */
  function onLanguageSwitch(choose) {
    var buttons = document.querySelectorAll('.lang-switch__button');
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener('click', function (ev) {
        choose(ev.currentTarget.getAttribute('data-lang'));
      });
    }
  }

  function locale(lang) {
    return LOCALES[lang] || 'fi-FI';
  }

  // ---- storage -----------------------------------------------------------------------

  function loadStore(key) {
    try {
      var data = JSON.parse(window.localStorage.getItem(key) || '{}');
      return data && typeof data === 'object' ? data : {};
    } catch (e) {
      return {};
    }
  }

  function saveStore(key, data) {
    try {
      window.localStorage.setItem(key, JSON.stringify(data));
    } catch (e) {
      /* private mode or full storage: the page still works for this page view */
    }
  }

  // ---- DOM ---------------------------------------------------------------------------

  function node(tag, className, text) {
    var n = document.createElement(tag);
    if (className) n.className = className;
    if (text != null) n.textContent = String(text);
    return n;
  }

  /* An absolute http(s) URL, or null: nothing else becomes a link. */
  function safeUrl(raw) {
    if (typeof raw !== 'string' || !raw) return null;
    try {
      var u = new URL(raw, window.location.href);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  /* A link that opens in a new tab; newWindowText (e.g. "(opens in a new tab)") is told to
   * screen readers in a .new-window span, so that a page can translate it later. */
  function externalLink(href, text, newWindowText) {
    var a = node('a', null, text);
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.appendChild(node('span', 'visually-hidden new-window', ' ' + newWindowText));
    return a;
  }

  /* Fills list (an <ul>) with the answer's sources ({title, doc_id, url}): a link where the
   * address is http(s), plain text otherwise. Returns how many there are. */
  function fillSources(list, sources, newWindowText) {
    list.textContent = '';
    (Array.isArray(sources) ? sources : []).forEach(function (s) {
      s = s || {};
      var li = document.createElement('li');
      var label = String(s.title || s.doc_id || '');
      var href = safeUrl(s.url);
      if (href) li.appendChild(externalLink(href, label, newWindowText));
      else li.textContent = label;
      list.appendChild(li);
    });
    return list.children.length;
  }

  // ---- API ---------------------------------------------------------------------------

  /* A failed request: status 0 when the network failed; detail is the server's text
   * detail (''), data its whole JSON answer (or null). */
  function ApiError(status, detail, retryAfter, data) {
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter || 0;
    this.data = data === undefined ? null : data;
  }

  /* The staff pages' CSRF token: the neuvonta_csrf cookie's value ('' without one). */
  function csrfToken() {
    var m = /(?:^|;\s*)neuvonta_csrf=([^;]*)/.exec(document.cookie);
    if (!m) return '';
    try {
      return decodeURIComponent(m[1]);
    } catch (e) {
      return m[1];
    }
  }

  /* A JSON request; resolves with the answer's JSON (null if none), rejects with ApiError.
   * headers: extra request headers. */
  function requestJson(method, path, body, headers) {
    var init = {
      method: method,
      headers: { Accept: 'application/json' },
      credentials: 'same-origin',
      cache: 'no-store'
    };
    Object.keys(headers || {}).forEach(function (name) {
      init.headers[name] = headers[name];
    });
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(
      function (res) {
        return res
          .json()
          .catch(function () {
            return null;
          })
          .then(function (data) {
            if (res.ok) return data;
            var detail = data && typeof data.detail === 'string' ? data.detail : '';
            throw new ApiError(res.status, detail, Number(res.headers.get('Retry-After')) || 0, data);
          });
      },
      function () {
        throw new ApiError(0, '');
      }
    );
  }

  /* requestJson that resolves with {status, data} for any answer of the server and rejects
   * only when the network failed. State-changing requests carry the CSRF header. */
  function requestStatus(method, path, body) {
    var headers = {};
    if (method !== 'GET') {
      var token = csrfToken();
      if (token) headers['X-CSRF-Token'] = token;
    }
    return requestJson(method, path, body, headers).then(
      function (data) {
        return { status: 200, data: data };
      },
      function (err) {
        if (!err.status) throw err;
        return { status: err.status, data: err.data };
      }
    );
  }

  // ---- start -------------------------------------------------------------------------

  function ready(init) {
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
    else init();
  }

  window.Neuvonta = {
    LANGS: LANGS,
    translator: translator,
    supported: supported,
    startLanguage: startLanguage,
    applyTexts: applyTexts,
    onLanguageSwitch: onLanguageSwitch,
    locale: locale,
    loadStore: loadStore,
    saveStore: saveStore,
    node: node,
    safeUrl: safeUrl,
    externalLink: externalLink,
    fillSources: fillSources,
    ApiError: ApiError,
    requestJson: requestJson,
    requestStatus: requestStatus,
    csrfToken: csrfToken,
    ready: ready
  };
})();
