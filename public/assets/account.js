// The account page: who is signed in, every session of theirs (this device marked), revoke one, log out,
// log out everywhere. Built with textContent only: user agents and addresses are data, never markup.
"use strict";
(function () {
  var rows = document.getElementById("session-rows");
  var message = document.getElementById("message");
  var who = document.getElementById("who");
  var LOGIN = "/login?rd=%2Faccount";

  function show(text, ok) {
    message.textContent = text;
    message.className = ok ? "message ok" : "message";
    message.hidden = false;
  }

  function failed(res) {
    if (res.status === 401) {
      window.location.replace(LOGIN);
    } else if (res.status === 503) {
      show("The session service is unavailable right now. Try again in a moment.");
    } else {
      show("Something went wrong (HTTP " + res.status + "). Reload the page to try again.");
    }
  }

  function when(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? "" : d.toLocaleString();
  }

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function render(sessions) {
    rows.replaceChildren();
    sessions.forEach(function (s) {
      var tr = document.createElement("tr");
      var device = cell(s.userAgent || "Unknown device", "agent");
      if (s.current) {
        var badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "This device";
        device.appendChild(badge);
        tr.setAttribute("aria-current", "true");
      }
      tr.appendChild(device);
      tr.appendChild(cell(s.ip || ""));
      tr.appendChild(cell(when(s.createdAt)));
      tr.appendChild(cell(when(s.lastSeenAt)));
      var action = document.createElement("td");
      if (!s.current) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = "Revoke";
        button.setAttribute("aria-label", "Revoke the session of " + (s.userAgent || "unknown device") + " from " + (s.ip || "unknown address"));
        button.addEventListener("click", function () {
          revoke(s.id, button);
        });
        action.appendChild(button);
      }
      tr.appendChild(action);
      rows.appendChild(tr);
    });
  }

  function load() {
    return fetch("/api/auth/sessions", { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (res) {
      if (res.status !== 200) return failed(res);
      return res.json().then(function (data) {
        render(data.sessions);
      });
    });
  }

  function revoke(id, button) {
    button.disabled = true;
    fetch("/api/auth/sessions/" + encodeURIComponent(id), { method: "DELETE", credentials: "same-origin" })
      .then(function (res) {
        if (res.status === 204 || res.status === 404) {
          show("The session was ended.", true);
          return load().then(function () {
            document.getElementById("logout").focus();
          });
        }
        button.disabled = false;
        return failed(res);
      })
      .catch(function () {
        button.disabled = false;
        show("The service cannot be reached. Try again.");
      });
  }

  function post(path) {
    return fetch(path, { method: "POST", credentials: "same-origin" })
      .then(function (res) {
        if (res.status === 204) window.location.assign("/login");
        else failed(res);
      })
      .catch(function () {
        show("The service cannot be reached. Try again.");
      });
  }

  document.getElementById("logout").addEventListener("click", function () {
    post("/api/auth/logout");
  });
  document.getElementById("logout-all").addEventListener("click", function () {
    post("/api/auth/logout-all");
  });

  fetch("/api/auth/session", { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (res) {
      if (res.status !== 200) return failed(res);
      return res.json().then(function (s) {
        who.textContent = "Signed in as " + s.username + ".";
        return load();
      });
    })
    .catch(function () {
      show("The service cannot be reached. Try again.");
    });
})();
