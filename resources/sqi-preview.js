// Drawing for the panels' previews: a waveform (pulse-shaper: what the pin gets and what the
// shape planned) and a container's timeline (dc-container). Only drawing: the edges, the plan
// and the timeline come from the runtime's own lib/ code through the nodes' admin endpoints.
// Every number is drawn with SVG elements made one by one; no text from a flow becomes markup.
(function () {
  var sqi = (window.SQI_PULSE = window.SQI_PULSE || {});
  var NS = "http://www.w3.org/2000/svg";

  function css(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name);
    return v && v.trim() ? v.trim() : fallback;
  }
  sqi.css = css;

  function el(parent, tag, attrs) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      e.setAttribute(k, String(attrs[k]));
    });
    if (parent) {
      parent.appendChild(e);
    }
    return e;
  }
  function text(parent, x, y, s, attrs) {
    var t = el(parent, "text", Object.assign({ x: x, y: y, "font-size": 10, fill: css("--red-ui-secondary-text-color", "#777") }, attrs || {}));
    t.textContent = s;
    return t;
  }
  /** A round step for an axis of `span` units with about `n` ticks. */
  function niceStep(span, n) {
    var raw = span / Math.max(1, n);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  function fmt(v) {
    return String(Math.round(v * 1000) / 1000);
  }
  sqi.niceStep = niceStep;

  /**
   * A panel's preview request: the returned function asks `url` with `body()` once the fields
   * have been still for `delayMs`, and hands `show` only the latest answer (an older one that
   * arrives late is dropped): show(answer) or show(null, the error's text).
   */
  sqi.latest = function (url, delayMs, body, show) {
    var timer = null;
    var seq = 0;
    return function soon() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var mine = ++seq;
        $.ajax({
          url: url,
          type: "POST",
          contentType: "application/json",
          data: JSON.stringify(body()),
          success: function (answer) {
            if (mine === seq) show(answer, null);
          },
          error: function (jqXHR) {
            if (mine === seq) show(null, (jqXHR.responseJSON && jqXHR.responseJSON.error) || "no preview: " + (jqXHR.statusText || "no answer"));
          },
        });
      }, delayMs);
    };
  };

  /**
   * Draws one row's preview into `box` (emptied first): the plan as a shaded band (what the
   * limits cut or moved shows where the band is not under the pin's trace) and the pin's
   * edges as a line. opts: {height, axis: true for a time axis in ms, pwm: levels are duties}.
   */
  sqi.drawWave = function (box, row, opts) {
    opts = opts || {};
    var width = Math.max(120, Math.floor($(box).width() || 300));
    var height = opts.height || 26;
    var axisH = opts.axis ? 18 : 0;
    $(box).empty();
    var svg = el(null, "svg", { width: width, height: height + axisH, class: "sqi-wave", viewBox: "0 0 " + width + " " + (height + axisH) });
    box.appendChild(svg);
    var planned = row.planned || [];
    var edges = row.edges || [];
    var end = Math.max(row.endMs || 0, planned.length ? planned[planned.length - 1].end : 0);
    var span = Math.max(end * 1.04, 1);
    var pad = 2;
    var x = function (t) {
      return pad + (t / span) * (width - 2 * pad);
    };
    var full = opts.pwm ? 100 : 1;
    var top = 3;
    var bottom = height - 2;
    var y = function (level) {
      return bottom - (Math.min(level, full) / full) * (bottom - top);
    };
    el(svg, "line", { x1: 0, x2: width, y1: bottom, y2: bottom, stroke: css("--red-ui-secondary-border-color", "#ccc") });
    var cut = css("--red-ui-text-color-warning", "#d58b2a");
    var pin = css("--red-ui-text-color-link", "#0070c0");
    // The pin's pulses, [rise, fall, level].
    var pulses = [];
    for (var i = 0; i + 1 < edges.length; i++) {
      if (edges[i].level > 0 && edges[i + 1].level === 0) {
        pulses.push([edges[i].t, edges[i + 1].t, edges[i].level]);
      }
    }
    pulses.forEach(function (p) {
      el(svg, "rect", {
        class: "sqi-pulse",
        x: x(p[0]),
        y: y(p[2]),
        width: Math.max(0.5, x(p[1]) - x(p[0])),
        height: bottom - y(p[2]),
        fill: pin,
        "fill-opacity": 0.22,
      });
    });
    // What the plan asked for and the pin does not get (cut, moved or skipped by a limit), filled.
    planned.forEach(function (s) {
      var from = s.start;
      pulses.forEach(function (p) {
        if (p[1] <= from || p[0] >= s.end) {
          return;
        }
        if (p[0] > from) {
          gap(from, p[0], s.level);
        }
        from = Math.max(from, p[1]);
      });
      if (from < s.end) {
        gap(from, s.end, s.level);
      }
    });
    function gap(a, b, level) {
      if (b - a < 1e-6) {
        return;
      }
      el(svg, "rect", { class: "sqi-cut", x: x(a), y: y(level), width: Math.max(1, x(b) - x(a)), height: bottom - y(level), fill: cut, "fill-opacity": 0.6 });
    }
    // The plan's own outline, dashed, so that a pulse widened or moved later shows against it.
    planned.forEach(function (s) {
      el(svg, "rect", {
        class: "sqi-planned",
        x: x(s.start),
        y: y(s.level),
        width: Math.max(0.5, x(s.end) - x(s.start)),
        height: bottom - y(s.level),
        fill: "none",
        stroke: cut,
        "stroke-dasharray": "3 2",
        "stroke-width": 1,
      });
    });
    var d = "M0 " + bottom;
    edges.forEach(function (e) {
      d += " H" + x(e.t).toFixed(2) + " V" + y(e.level).toFixed(2);
    });
    d += " H" + width;
    el(svg, "path", { class: "sqi-pin", d: d, fill: "none", stroke: pin, "stroke-width": opts.axis ? 1.5 : 1.2 });
    if (opts.axis) {
      var step = niceStep(span, Math.max(2, Math.floor(width / 70)));
      for (var t = 0; t <= span + 1e-9; t += step) {
        el(svg, "line", { x1: x(t), x2: x(t), y1: bottom, y2: bottom + 4, stroke: css("--red-ui-secondary-border-color", "#ccc") });
        text(svg, x(t), height + 14, fmt(t) + (t === 0 ? " ms" : ""), { "text-anchor": t === 0 ? "start" : "middle" });
      }
    }
    return svg;
  };

  /**
   * Draws a container's timeline into `box`: ticks across, one lane per event name (the
   * names are text nodes), a mark per tick that holds that event. `glance` is what
   * dc-container/preview returned.
   */
  sqi.drawTimeline = function (box, glance) {
    var lanes = glance.lanes || [];
    var width = Math.max(200, Math.floor($(box).width() || 400));
    var label = 130;
    var laneH = 16;
    var height = lanes.length * laneH + 20;
    $(box).empty();
    var svg = el(null, "svg", { width: width, height: height, class: "sqi-timeline", viewBox: "0 0 " + width + " " + height });
    box.appendChild(svg);
    var maxTick = Math.max(1, glance.maxTick || 1);
    var x = function (tick) {
      return label + ((tick - 0.5) / maxTick) * (width - label - 6);
    };
    var mark = css("--red-ui-text-color-link", "#0070c0");
    lanes.forEach(function (lane, i) {
      var yy = i * laneH + 2;
      text(svg, 0, yy + 11, lane.event + " × " + lane.count, { class: "sqi-lane-name", fill: css("--red-ui-primary-text-color", "#555") });
      el(svg, "line", { x1: label, x2: width - 6, y1: yy + laneH / 2, y2: yy + laneH / 2, stroke: css("--red-ui-secondary-border-color", "#ddd") });
      (lane.ticks || []).forEach(function (tick) {
        el(svg, "rect", { class: "sqi-tick-mark", x: x(tick) - 1.5, y: yy + 3, width: 3, height: laneH - 6, fill: mark });
      });
    });
    var step = Math.max(1, Math.round(niceStep(maxTick, Math.max(2, Math.floor((width - label) / 60)))));
    var base = lanes.length * laneH + 14;
    for (var t = 1; t <= maxTick; t += t === 1 && step > 1 ? step - 1 : step) {
      text(svg, x(t), base, String(t), { "text-anchor": "middle" });
    }
    return svg;
  };
})();
