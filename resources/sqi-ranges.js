// The editor's half of lib/ranges.ts, loaded by each node's panel (Node-RED serves this folder
// at resources/@sqi/node-red-pulse/): a field's validator from the ranges the runtime exports
// as RED.settings.<type>Ranges. A field is valid only when the runtime takes it; a blank one only
// where `blank` (the runtime then takes the default).
(function () {
  var sqi = (window.SQI_PULSE = window.SQI_PULSE || {});
  sqi.ranged = function (setting, key, blank) {
    return function (v) {
      if (v === "" || v === undefined || v === null) {
        return !!blank;
      }
      var r = (RED.settings[setting] || {})[key];
      var n = Number(v);
      if (!r) {
        return isFinite(n);
      }
      return isFinite(n) && (r.exclusiveMin ? n > r.min : n >= r.min) && n <= r.max && (!r.integer || Number.isInteger(n));
    };
  };
  /**
   * A flow saved before a field existed (the demo, most examples) has no value for it: each of
   * the panel's selects that shows nothing is set to the field's default, the value the runtime
   * applies, not left an empty dropdown. `prefix`: "node-input-" or "node-config-input-".
   */
  sqi.showDefaults = function (node, prefix) {
    var defaults = (node._def && node._def.defaults) || {};
    Object.keys(defaults).forEach(function (key) {
      var select = $("select#" + (prefix || "node-input-") + key);
      if (select.length && !select.val() && defaults[key].value !== undefined) {
        select.val(String(defaults[key].value));
      }
    });
  };
})();
