// Preloaded into the demo's Node-RED (node --require): when the launcher that started it
// goes away (even by SIGKILL), its IPC channel closes and Node-RED stops gracefully
// instead of running on as an orphan with pins in whatever state they were.
if (process.channel) {
  process.channel.unref();
  process.on("disconnect", () => process.kill(process.pid, "SIGTERM"));
}
export {};
