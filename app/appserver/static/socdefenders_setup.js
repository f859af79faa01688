/*
 * TA-socdefenders setup page (default/data/ui/views/socdefenders_setup.xml).
 *
 * Talks to splunkd only through Splunk Web's proxy, /<locale>/splunkd/__raw/..., with Splunk
 * Web's CSRF form key (the splunkweb_csrf_token_<port> cookie, sent back as X-Splunk-Form-Key):
 * no Python handler, no framework, nothing but what the browser has. Every splunkd error is
 * shown as one readable line; nothing fails silently.
 *
 * The API key is written to storage/passwords (realm TA-socdefenders, user = the `credential`
 * setting) and never read back: the page asks splunkd only for the entry's realm, username and
 * update time (`f=` filters), and clears the field once the key is stored.
 */
(function () {
    "use strict";

    var APP = "TA-socdefenders";
    var REALM = "TA-socdefenders";
    var NS = "/servicesNS/nobody/" + APP;

    // The rules the program applies to these settings (src/config, src/source/*/settings.rs).
    var IOC_TYPES = ["ipv4", "ipv6", "domain", "url", "md5", "sha1", "sha256", "sha512", "email", "cve",
        "mitre_attack", "mitre-attack"];
    var SLUG = /^[A-Za-z0-9_+-]{1,64}$/;
    var URL_RE = /^https?:\/\/\S+$/;
    var RULES = {
        tier: function (v) { return /^(free|pro)$/.test(v) ? null : "must be free or pro"; },
        type: function (v) {
            var bad = v.split(",").map(function (t) { return t.trim(); })
                .filter(function (t) { return t && IOC_TYPES.indexOf(t) < 0; });
            return bad.length ? "has unknown type \"" + bad[0] + "\"; valid: " + IOC_TYPES.slice(0, 11).join(", ") : null;
        },
        confidence: function (v) { return /^(high|medium|low)$/.test(v) ? null : "must be high, medium or low"; },
        category: function (v) { return SLUG.test(v) ? null : "must be a slug such as threat-intel"; },
        industry: function (v) { return SLUG.test(v) ? null : "must be a slug such as energy"; },
        limit: wholeNumber(1, 10000),
        max_pages: wholeNumber(1, 1000),
        base_url: url,
        proxy: url,
        taxii_url: url,
        ca_file: function (v) { return /[\u0000-\u001f]/.test(v) ? "must be a file path" : null; },
        collection: function (v) { return v.length > 256 ? "must be at most 256 characters" : null; },
        interval: function (v) {
            return /^\d+$/.test(v) && +v >= 60 && +v <= 604800 ? null
                : "must be a number of seconds from 60 to 604800 (the API is paced per run)";
        },
        index: function (v) { return /^[a-z0-9_][a-z0-9_-]{0,79}$/.test(v) ? null : "must be an index name (lower case, digits, _ and -)"; }
    };

    function wholeNumber(min, max) {
        return function (v) {
            var n = v.replace(/_/g, "");
            return /^\d+$/.test(n) && +n >= min && +n <= max ? null : "must be a whole number from " + min + " to " + max;
        };
    }

    function url(v) {
        return URL_RE.test(v) && v.replace(/\/+$/, "").length > "https://".length ? null : "must be an http:// or https:// URL";
    }

    function $(id) { return document.getElementById(id); }

    // --- splunkd through Splunk Web ------------------------------------------------------

    function locale() {
        var first = window.location.pathname.split("/")[1] || "";
        return /^[a-z]{2}(-[A-Za-z]{2})?$/.test(first) ? first : "en-US";
    }

    /** Splunk Web's CSRF form key: the splunkweb_csrf_token_<port> cookie (this page's port first). */
    function formKey() {
        var cookies = document.cookie.split(";").map(function (c) { return c.trim(); });
        var mine = "splunkweb_csrf_token_" + (window.location.port || (window.location.protocol === "https:" ? "443" : "80")) + "=";
        var any = null;
        for (var i = 0; i < cookies.length; i++) {
            if (cookies[i].indexOf(mine) === 0) { return decodeURIComponent(cookies[i].slice(mine.length)); }
            if (/^splunkweb_csrf_token_\d+=/.test(cookies[i])) { any = decodeURIComponent(cookies[i].split("=")[1]); }
        }
        return any;
    }

    function SplunkError(status, text) {
        this.status = status;
        this.message = text;
    }

    /** One call to splunkd: resolves with the JSON body, rejects with a SplunkError. */
    function rest(method, path, form) {
        var opts = {
            method: method,
            credentials: "same-origin",
            headers: { "X-Requested-With": "XMLHttpRequest", "Accept": "application/json" }
        };
        if (method !== "GET") {
            var key = formKey();
            if (!key) {
                return Promise.reject(new SplunkError(0, "Splunk Web's form key is missing (no splunkweb_csrf_token cookie): reload the page and sign in again"));
            }
            opts.headers["X-Splunk-Form-Key"] = key;
            opts.headers["Content-Type"] = "application/x-www-form-urlencoded";
            var body = new URLSearchParams(form || {});
            body.set("output_mode", "json");
            opts.body = body.toString();
        }
        var sep = path.indexOf("?") < 0 ? "?" : "&";
        var target = "/" + locale() + "/splunkd/__raw" + path + (method === "GET" ? sep + "output_mode=json" : "");
        return fetch(target, opts).then(function (resp) {
            return resp.text().then(function (text) {
                var json = null;
                try { json = text ? JSON.parse(text) : {}; } catch (e) { json = null; }
                if (resp.ok) { return json || {}; }
                throw new SplunkError(resp.status, splunkMessage(json, text));
            });
        }, function (e) {
            throw new SplunkError(0, "Splunk Web did not answer (" + e.message + ")");
        });
    }

    /** splunkd's own message, on one line and bounded. */
    function splunkMessage(json, text) {
        var msg = json && json.messages && json.messages.length ? json.messages[0].text : "";
        if (!msg && text && text.charAt(0) !== "<") { msg = text; }
        return String(msg || "").replace(/\s+/g, " ").trim().slice(0, 300);
    }

    /** A SplunkError as one sentence for `what` (what the page tried to do). */
    function explain(what, err, denied) {
        if (!(err instanceof SplunkError)) { return what + " failed: " + err; }
        var text;
        switch (err.status) {
            case 0: text = err.message; break;
            case 401: text = "your Splunk session has expired: sign in again, then retry"; break;
            case 403: text = denied; break;
            case 404: text = "splunkd does not know it (HTTP 404)" + (err.message ? ": " + err.message : ""); break;
            default: text = "Splunk answered HTTP " + err.status + (err.message ? ": " + err.message : "");
        }
        return what + " failed: " + text + ".";
    }

    function banner(kind, text) {
        var b = $("sd-banner");
        b.className = "sd-banner sd-" + kind;
        b.textContent = text;
    }

    function enc(s) { return encodeURIComponent(s); }

    // --- the API key -------------------------------------------------------------------------

    var credential = "api_key";

    function passwordPath() { return NS + "/storage/passwords/" + enc(REALM + ":" + credential + ":"); }

    function showKeyStatus() {
        $("sd-credential").textContent = credential;
        // Only these fields come back: never clear_password.
        return rest("GET", passwordPath() + "?f=realm&f=username&f=updated").then(function (json) {
            var entry = (json.entry || [])[0] || {};
            $("sd-key-status").textContent = "stored" + (entry.updated ? ", changed " + entry.updated : "");
            return true;
        }, function (err) {
            if (err.status === 404) {
                $("sd-key-status").textContent = "not stored yet";
                return false;
            }
            $("sd-key-status").textContent = "unknown";
            banner("error", explain("Checking the stored key", err,
                "your role cannot list stored secrets (it needs the list_storage_passwords capability)"));
            return null;
        });
    }

    var DENIED_KEY = "your role cannot store secrets: storing the key needs the admin role or the " +
        "edit_storage_passwords capability (splunkd answered 403). Ask a Splunk admin to do it";

    function saveKey() {
        var field = $("sd-key");
        var key = field.value.trim();
        $("sd-key-error").textContent = "";
        if (!key || key.length > 512 || /[\s\u0000-\u001f]/.test(key)) {
            $("sd-key-error").textContent = key ? "a key has no spaces or control characters" : "enter the key first";
            return Promise.resolve(false);
        }
        var button = $("sd-save-key");
        button.disabled = true;
        var create = function () {
            return rest("POST", NS + "/storage/passwords", { name: credential, password: key, realm: REALM });
        };
        var update = function () { return rest("POST", passwordPath(), { password: key }); };
        return showKeyStatus().then(function (exists) {
            if (exists === null) { throw new SplunkError(-1, ""); }
            return exists ? update() : create().catch(function (err) {
                // Created meanwhile (another admin, another tab): update it instead.
                if (err.status === 409) { return update(); }
                throw err;
            });
        }).then(function () {
            return rest("POST", NS + "/configs/conf-app/install", { is_configured: "1" }).catch(function () { return null; });
        }).then(function () {
            field.value = "";
            key = null;
            banner("ok", "The key is stored in Splunk's secret store. Enable an input below.");
            return showKeyStatus();
        }).catch(function (err) {
            if (err.status !== -1) { banner("error", explain("Storing the key", err, DENIED_KEY)); }
            return false;
        }).then(function (r) {
            button.disabled = false;
            return r;
        });
    }

    // --- settings ----------------------------------------------------------------------------

    var loaded = {};

    function settingFields() {
        return Array.prototype.slice.call(document.querySelectorAll("#sd-settings-section [data-key]"));
    }

    function stanzaPath(stanza) { return NS + "/configs/conf-socdefenders/" + enc(stanza); }

    function loadSettings() {
        var stanzas = ["default", "input:taxii"];
        return Promise.all(stanzas.map(function (s) {
            return rest("GET", stanzaPath(s)).then(function (json) {
                loaded[s] = ((json.entry || [])[0] || {}).content || {};
            });
        })).then(function () {
            credential = loaded["default"].credential || "api_key";
            settingFields().forEach(function (el) {
                var v = loaded[el.getAttribute("data-stanza")][el.getAttribute("data-key")];
                el.value = v === undefined || v === null ? "" : String(v);
            });
        }, function (err) {
            banner("error", explain("Reading socdefenders.conf", err,
                "your role cannot read this app's configuration (splunkd answered 403)"));
        });
    }

    function errorFor(el) { return document.querySelector("[data-error-for='" + el.id + "']"); }

    /** Checks every field; shows each problem next to its field. True when all are valid. */
    function validateSettings() {
        var ok = true;
        settingFields().forEach(function (el) {
            var v = el.value.trim();
            var problem = v === "" ? null : RULES[el.getAttribute("data-key")](v);
            if (!problem && el.id === "sd-limit" && v && +v > ($("sd-tier").value === "pro" ? 10000 : 100)) {
                problem = null; // the program caps it with a warning; say so below
                errorFor(el).textContent = "above the tier's maximum: the input will use " +
                    ($("sd-tier").value === "pro" ? "10000" : "100");
                return;
            }
            errorFor(el).textContent = problem ? el.getAttribute("data-key") + " " + problem : "";
            if (problem) { ok = false; }
        });
        return ok;
    }

    function saveSettings() {
        if (!validateSettings()) {
            banner("error", "Nothing was saved: correct the settings marked in red.");
            return Promise.resolve(false);
        }
        var changes = {};
        settingFields().forEach(function (el) {
            var stanza = el.getAttribute("data-stanza");
            var key = el.getAttribute("data-key");
            var before = loaded[stanza] && loaded[stanza][key] !== undefined && loaded[stanza][key] !== null ? String(loaded[stanza][key]) : "";
            var now = el.value.trim();
            if (now !== before) {
                changes[stanza] = changes[stanza] || {};
                changes[stanza][key] = now;
            }
        });
        var stanzas = Object.keys(changes);
        if (!stanzas.length) {
            banner("ok", "No setting changed.");
            return Promise.resolve(true);
        }
        return stanzas.reduce(function (p, s) {
            return p.then(function () { return rest("POST", stanzaPath(s), changes[s]); });
        }, Promise.resolve()).then(function () {
            banner("ok", "Saved to local/socdefenders.conf; the next run of each input uses them.");
            return loadSettings().then(function () { return true; });
        }, function (err) {
            banner("error", explain("Saving the settings", err,
                "your role cannot change this app's configuration (it needs the admin role; splunkd answered 403)"));
            return false;
        });
    }

    // --- inputs ------------------------------------------------------------------------------

    var runs = {};

    /** The input name a script stanza runs (`--input <name>`, else "default"). */
    function inputName(script) {
        var m = /--input\s+(\S+)/.exec(script);
        return m ? m[1] : "default";
    }

    function cell(text) {
        var td = document.createElement("td");
        td.textContent = text;
        return td;
    }

    function loadRuns() {
        var search = "search `socdefenders_input_runs`";
        return rest("POST", "/services/search/jobs", {
            search: search, exec_mode: "oneshot", earliest_time: "-7d", count: "0"
        }).then(function (json) {
            runs = {};
            (json.results || []).forEach(function (r) { runs[r.input] = r; });
        }, function (err) {
            banner("error", explain("Reading the last runs from _internal", err,
                "your role cannot search _internal (splunkd answered 403)"));
        });
    }

    function loadInputs() {
        return rest("GET", NS + "/data/inputs/script?count=0&search=" + enc("socdefenders-iocs")).then(function (json) {
            var body = $("sd-inputs");
            body.textContent = "";
            (json.entry || []).forEach(function (entry) { body.appendChild(inputRow(entry)); });
            if (!body.children.length) { body.appendChild(cell("no inputs of this app found")); }
        }, function (err) {
            $("sd-inputs").textContent = "";
            banner("error", explain("Listing the inputs", err,
                "your role cannot read data inputs (it needs the admin role; splunkd answered 403)"));
        });
    }

    function inputRow(entry) {
        var c = entry.content || {};
        var name = entry.name;
        var disabled = c.disabled === true || c.disabled === "1" || c.disabled === 1 || c.disabled === "true";
        var tr = document.createElement("tr");
        tr.setAttribute("data-input", name);
        var label = inputName(name) + (/\.exe(\s|$)/.test(name) ? " (Windows)" : "");
        tr.appendChild(cell(label));
        tr.appendChild(cell(disabled ? "disabled" : "enabled"));
        var interval = document.createElement("input");
        interval.value = c.interval === undefined ? "" : String(c.interval);
        interval.className = "sd-interval";
        var index = document.createElement("input");
        index.value = c.index || "default";
        index.className = "sd-index";
        [interval, index].forEach(function (el) {
            var td = document.createElement("td");
            td.appendChild(el);
            tr.appendChild(td);
        });
        var r = runs[inputName(name)] || {};
        tr.appendChild(cell(r.last_success ? new Date(1000 * r.last_success).toISOString() : "never (last 7 days)"));
        tr.appendChild(cell(r.last_error || ""));
        var actions = document.createElement("td");
        var toggle = document.createElement("button");
        toggle.type = "button";
        toggle.className = "btn sd-toggle";
        toggle.textContent = disabled ? "Enable" : "Disable";
        toggle.onclick = function () { return setEnabled(name, disabled); };
        var save = document.createElement("button");
        save.type = "button";
        save.className = "btn sd-save-input";
        save.textContent = "Save";
        save.onclick = function () { return saveInput(name, c, interval.value.trim(), index.value.trim()); };
        var err = document.createElement("span");
        err.className = "sd-error sd-input-error";
        actions.appendChild(toggle);
        actions.appendChild(save);
        actions.appendChild(err);
        tr.appendChild(actions);
        return tr;
    }

    function inputPath(name) { return NS + "/data/inputs/script/" + enc(name); }

    var DENIED_INPUTS = "your role cannot change data inputs (it needs the admin role or edit_scripted; splunkd answered 403)";

    function setEnabled(name, enable) {
        return rest("POST", inputPath(name) + (enable ? "/enable" : "/disable"), {}).then(function () {
            banner("ok", (enable ? "Enabled " : "Disabled ") + inputName(name) + ".");
            return loadInputs();
        }, function (err) {
            banner("error", explain((enable ? "Enabling " : "Disabling ") + inputName(name), err, DENIED_INPUTS));
        });
    }

    function saveInput(name, content, interval, index) {
        var row = document.querySelector("tr[data-input='" + name.replace(/'/g, "\\'") + "']");
        var errors = [["interval", interval], ["index", index]].map(function (kv) {
            var p = RULES[kv[0]](kv[1]);
            return p ? kv[0] + " " + p : null;
        }).filter(Boolean);
        row.querySelector(".sd-input-error").textContent = errors.join("; ");
        if (errors.length) {
            banner("error", "Nothing was saved: correct the input marked in red.");
            return Promise.resolve(false);
        }
        var form = {};
        if (interval !== String(content.interval)) { form.interval = interval; }
        if (index !== (content.index || "default")) { form.index = index; }
        if (!Object.keys(form).length) {
            banner("ok", "No change to " + inputName(name) + ".");
            return Promise.resolve(true);
        }
        return rest("POST", inputPath(name), form).then(function () {
            banner("ok", "Saved " + inputName(name) + ".");
            return loadInputs();
        }, function (err) {
            banner("error", explain("Saving " + inputName(name), err, DENIED_INPUTS));
        });
    }

    // --- start -------------------------------------------------------------------------------

    var tries = 0;

    function start() {
        // Splunk Web renders the dashboard's <html> panel around the time it loads this script.
        if (!$("sd-setup")) {
            if (tries++ < 100) { setTimeout(start, 100); }
            return;
        }
        $("sd-save-key").onclick = saveKey;
        $("sd-save-settings").onclick = saveSettings;
        settingFields().forEach(function (el) { el.onchange = validateSettings; });
        loadSettings()
            .then(showKeyStatus)
            .then(loadRuns)
            .then(loadInputs)
            .then(function () { document.body.setAttribute("data-sd-ready", "1"); });
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }
}());
