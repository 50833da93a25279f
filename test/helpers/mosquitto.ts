// Mosquitto for the MQTT tests, as Debian installs it. Under .ci/run (SQI_CI=1) a missing
// mosquitto is a failure; elsewhere the MQTT tests skip, saying so loudly.
import { mosquittoPath } from "../../scripts/mosquitto";

export const mosquittoInstalled = mosquittoPath() !== undefined;
if (!mosquittoInstalled && process.env.SQI_CI) throw new Error("mosquitto is missing under .ci/run: it must install it (apt-get install -y mosquitto)");
if (!mosquittoInstalled) process.stderr.write("\n!!! MQTT tests SKIPPED: mosquitto is not installed. Install it with: sudo apt-get install -y mosquitto\n\n");

/** The `skip` option for a describe of MQTT tests. */
export const skipWithoutMosquitto: false | string = mosquittoInstalled ? false : "mosquitto is not installed (sudo apt-get install -y mosquitto)";
