// The WebAuthn ceremonies of portcullis's pages: the only script they run. A form marked
// data-webauthn="login" (the login page: passkey autofill and a button), "register" (the
// account console: add a passkey) or "verify" (a passkey as second factor) asks the issuer for
// options (POST to data-options with the form's CSRF token), runs the browser's ceremony, puts
// the answer in the form's hidden fields and submits it. Without this script the pages work as
// before for everything but passkeys.
"use strict";
(function () {
  var form = document.querySelector("form[data-webauthn]");
  if (!form) return;
  var kind = form.getAttribute("data-webauthn");
  var errorBox = form.querySelector("#webauthn-error");
  var supported = !!(window.PublicKeyCredential && navigator.credentials);

  function say(message) {
    if (!errorBox) return;
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function fromB64u(s) {
    var b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
    var out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out.buffer;
  }

  function toB64u(buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // webauthn-rs leaves absent members out; drop nulls anyway, the browser refuses them.
  function clean(o) {
    if (Array.isArray(o)) return o.map(clean);
    if (o && typeof o === "object") {
      var r = {};
      Object.keys(o).forEach(function (k) {
        if (o[k] !== null) r[k] = clean(o[k]);
      });
      return r;
    }
    return o;
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: fromB64u(c.id) });
    });
  }

  function creationOptions(pk) {
    pk = clean(pk);
    pk.challenge = fromB64u(pk.challenge);
    pk.user.id = fromB64u(pk.user.id);
    pk.excludeCredentials = withIds(pk.excludeCredentials);
    return pk;
  }

  function requestOptions(pk) {
    pk = clean(pk);
    pk.challenge = fromB64u(pk.challenge);
    pk.allowCredentials = withIds(pk.allowCredentials);
    return pk;
  }

  function attestationJSON(c) {
    var r = c.response;
    return {
      id: c.id, rawId: toB64u(c.rawId), type: c.type, extensions: {},
      response: {
        attestationObject: toB64u(r.attestationObject),
        clientDataJSON: toB64u(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : undefined,
      },
    };
  }

  function assertionJSON(c) {
    var r = c.response;
    return {
      id: c.id, rawId: toB64u(c.rawId), type: c.type, extensions: {},
      response: {
        authenticatorData: toB64u(r.authenticatorData),
        clientDataJSON: toB64u(r.clientDataJSON),
        signature: toB64u(r.signature),
        userHandle: r.userHandle ? toB64u(r.userHandle) : null,
      },
    };
  }

  function options() {
    var body = new URLSearchParams();
    body.set("csrf", form.elements.csrf.value);
    return fetch(form.getAttribute("data-options"), {
      method: "POST", body: body, credentials: "same-origin",
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j.error || "The passkey request failed.");
        return j;
      });
    });
  }

  function submit(handle, answer) {
    form.elements.webauthn_handle.value = handle;
    form.elements.webauthn_credential.value = JSON.stringify(answer);
    form.submit();
  }

  function failed(e) {
    if (e && e.name === "AbortError") return;
    if (e && e.name === "NotAllowedError") {
      say("The passkey request was cancelled or timed out.");
    } else if (e && e.name === "InvalidStateError") {
      say("This passkey is registered already.");
    } else {
      say((e && e.message) || "The passkey request failed.");
    }
  }

  // A pending autofill request must end before a button starts another.
  var pending = null;

  function assert(mediation) {
    if (pending) pending.abort();
    var ctl = new AbortController();
    pending = ctl;
    return options().then(function (o) {
      var req = { publicKey: requestOptions(o.options.publicKey), signal: ctl.signal };
      if (mediation) req.mediation = mediation;
      return navigator.credentials.get(req).then(function (c) {
        if (c) submit(o.handle, assertionJSON(c));
      });
    });
  }

  if (!supported) {
    if (kind !== "login") say("This browser does not support passkeys.");
    return;
  }

  if (kind === "login" || kind === "verify") {
    var button = form.querySelector("#passkey-button");
    if (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        say("");
        assert(null).catch(failed);
      });
    }
    var autofill = form.getAttribute("data-conditional") !== "off";
    if (kind === "login" && autofill && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (yes) {
        if (yes) assert("conditional").catch(failed);
      });
    }
  } else if (kind === "register") {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      say("");
      options().then(function (o) {
        return navigator.credentials
          .create({ publicKey: creationOptions(o.options.publicKey) })
          .then(function (c) { submit(o.handle, attestationJSON(c)); });
      }).catch(failed);
    });
  }
})();
