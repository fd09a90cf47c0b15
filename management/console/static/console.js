// The moma console's one script (no build step, no dependencies). Pages work without
// it; it adds what needs a live connection: the build log as it is written, the
// container log tail (and following it), and the metrics charts.
(function () {
  "use strict";

  var HISTORY = 60; // points per chart: two minutes at one every 2 s
  var POLL_MS = 2000;

  function errorText(body) {
    try {
      var error = JSON.parse(body);
      return error.message + (error.requestId ? " (request id " + error.requestId + ")" : "");
    } catch (e) {
      return body;
    }
  }

  // -- build log: server-sent events from the worker's log -------------------------------
  function followBuildLog(pre) {
    if (!window.EventSource) return;
    var status = document.getElementById("build-log-status");
    var source = new EventSource(pre.dataset.stream);
    source.addEventListener("log", function (event) {
      var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      pre.append(event.data + "\n");
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    });
    function showState(state) {
      var badge = document.querySelector("#image-state .state");
      if (!badge) return;
      badge.textContent = state;
      badge.className = "state state-" + state.toLowerCase();
    }
    source.addEventListener("state", function (event) { showState(event.data); });
    source.addEventListener("end", function (event) {
      source.close();
      showState(event.data);
      pre.dataset.state = event.data;
      if (status) status.textContent = "The build ended: " + event.data + ".";
      // the page again, for what a built image has (labels, "create service")
      window.setTimeout(function () { window.location.reload(); }, 1500);
    });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED && status) {
        status.textContent = "The log stream stopped; reload the page to see the rest.";
      }
    });
  }

  // -- container logs: the tail, again every 2 s while "Follow" is on --------------------
  function containerLogs(pre) {
    var follow = document.getElementById("logs-follow");
    var timer = null;
    var first = true;
    function load() {
      fetch(pre.dataset.logs, { headers: { Accept: "text/plain" }, credentials: "same-origin" })
        .then(function (response) {
          return response.text().then(function (text) {
            pre.textContent = response.ok ? text : errorText(text);
            if (first || (follow && follow.checked)) pre.scrollTop = pre.scrollHeight; // newest lines in view
            first = false;
          });
        })
        .catch(function (error) { pre.textContent = "Cannot read the logs: " + error; });
    }
    load();
    if (follow) {
      follow.addEventListener("change", function () {
        window.clearInterval(timer);
        if (follow.checked) {
          load();
          timer = window.setInterval(load, POLL_MS);
        }
      });
    }
  }

  // -- metrics: rates and percentiles from two snapshots of the runtime's counters -------
  function quantile(before, after, q) {
    var counts = after.map(function (bucket, i) {
      return [bucket[0], bucket[1] - (before[i] && before[i][0] === bucket[0] ? before[i][1] : 0)];
    });
    var total = counts.length ? counts[counts.length - 1][1] : 0;
    if (total <= 0) return null;
    var lower = 0, below = 0;
    for (var i = 0; i < counts.length; i++) {
      var bound = counts[i][0], cumulative = counts[i][1];
      if (cumulative >= q * total) {
        if (bound === null) return lower; // past the last finite bucket
        var inside = cumulative - below;
        return inside > 0 ? lower + (bound - lower) * (q * total - below) / inside : bound;
      }
      if (bound !== null) lower = bound;
      below = cumulative;
    }
    return lower;
  }

  function perSecond(now, then, name, seconds) {
    return Math.max(0, now[name] - then[name]) / seconds;
  }

  function draw(figure, points) {
    var values = points.filter(function (v) { return v !== null; });
    var peak = Math.max.apply(null, values.concat([0]));
    var scale = peak > 0 ? peak : 1;
    var step = 120 / (HISTORY - 1);
    var offset = HISTORY - points.length;
    var coordinates = [];
    points.forEach(function (value, i) {
      if (value === null) return;
      var y = 38 - (value / scale) * 34;
      coordinates.push(((offset + i) * step).toFixed(1) + "," + y.toFixed(1));
    });
    figure.querySelector("polyline").setAttribute("points", coordinates.join(" "));
    var last = points[points.length - 1];
    var output = figure.querySelector("output");
    output.textContent = last === null ? "—" : (last < 10 ? last.toFixed(2) : last.toFixed(0));
    figure.dataset.last = last === null ? "" : String(last);
    figure.dataset.peak = String(peak);
    figure.dataset.points = String(values.length);
  }

  function liveMetrics(section) {
    var status = document.getElementById("metrics-status");
    var figures = {};
    var history = {};
    section.querySelectorAll("figure[data-series]").forEach(function (figure) {
      figures[figure.dataset.series] = figure;
      history[figure.dataset.series] = [];
    });
    var previous = null;
    function record(now) {
      if (previous) {
        var seconds = Math.max(0.001, now.at - previous.at);
        var p50 = quantile(previous.latency, now.latency, 0.5);
        var p99 = quantile(previous.latency, now.latency, 0.99);
        var values = {
          rps: perSecond(now, previous, "requests", seconds),
          throttled: perSecond(now, previous, "throttled", seconds),
          errors: perSecond(now, previous, "errors", seconds),
          inFlight: now.inFlight,
          queueDepth: now.queueDepth,
          p50: p50 === null ? null : p50 * 1000,
          p99: p99 === null ? null : p99 * 1000
        };
        Object.keys(values).forEach(function (series) {
          if (!figures[series]) return;
          history[series].push(values[series]);
          if (history[series].length > HISTORY) history[series].shift();
          draw(figures[series], history[series]);
        });
      }
      previous = now;
    }
    function poll() {
      if (document.visibilityState === "hidden") return;
      fetch(section.dataset.metrics, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          return response.text().then(function (text) {
            if (!response.ok) {
              status.textContent = "Metrics unavailable: " + errorText(text);
              return;
            }
            var now = JSON.parse(text);
            now.at = performance.now() / 1000;
            record(now);
            status.textContent = "Read from the container's /metrics every 2 s.";
          });
        })
        .catch(function (error) { status.textContent = "Metrics unavailable: " + error; });
    }
    poll();
    window.setInterval(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("pre[data-stream]").forEach(followBuildLog);
    document.querySelectorAll("pre[data-logs]").forEach(containerLogs);
    document.querySelectorAll("section[data-metrics]").forEach(liveMetrics);
  });
})();
