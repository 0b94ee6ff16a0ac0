// The login page: posts the form to the JSON API, then follows the `redirect` the server answered (the
// server only echoes a safe target: a path of this site or an allowed host, else /account).
"use strict";
(function () {
  var form = document.getElementById("login-form");
  var message = document.getElementById("message");
  var submit = document.getElementById("submit");
  var rd = new URLSearchParams(window.location.search).get("rd");

  var shown = 0;
  function show(text) {
    message.textContent = text;
    message.hidden = false;
    // How many answers were shown (lets a test wait for the next one, even when the text repeats).
    message.dataset.count = String(++shown);
  }

  function waitText(seconds) {
    if (!(seconds > 0)) return "a while";
    if (seconds < 90) return seconds + (seconds === 1 ? " second" : " seconds");
    var minutes = Math.ceil(seconds / 60);
    return minutes + " minutes";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var username = form.elements.username.value;
    var password = form.elements.password.value;
    if (username === "" || password === "") {
      show("Enter your username and password.");
      (username === "" ? form.elements.username : form.elements.password).focus();
      return;
    }
    submit.disabled = true;
    var body = { username: username, password: password };
    if (rd) body.redirect = rd;
    fetch("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    })
      .then(function (res) {
        if (res.status === 200) {
          return res.json().then(function (data) {
            window.location.assign(typeof data.redirect === "string" ? data.redirect : "/account");
          });
        }
        submit.disabled = false;
        if (res.status === 401) {
          show("Wrong username or password.");
          form.elements.password.value = "";
          form.elements.password.focus();
        } else if (res.status === 429) {
          var wait = Number(res.headers.get("Retry-After"));
          show("Too many failed attempts. Try again in " + waitText(wait) + ".");
        } else if (res.status === 503) {
          show("Sign-in is unavailable right now (the session service cannot be reached). Try again in a moment.");
        } else if (res.status === 400 || res.status === 413) {
          show("The username or password is not valid input.");
        } else {
          show("Sign-in failed unexpectedly (HTTP " + res.status + "). Try again.");
        }
      })
      .catch(function () {
        submit.disabled = false;
        show("The service cannot be reached. Check your connection and try again.");
      });
  });
})();
