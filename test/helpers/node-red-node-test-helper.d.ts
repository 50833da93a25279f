// The part of node-red-node-test-helper the tests use (it ships no types).
declare module "node-red-node-test-helper" {
  import type { EventEmitter } from "node:events";
  interface TestNode extends EventEmitter {
    id: string;
    receive(msg: Record<string, unknown>): void;
    [key: string]: unknown;
  }
  interface SuperTestRequest extends PromiseLike<{ status: number; body: unknown }> {
    send(body: unknown): SuperTestRequest;
    set(name: string, value: string): SuperTestRequest;
    expect(status: number): SuperTestRequest;
  }
  interface Helper {
    init(runtimePath: string, userSettings?: Record<string, unknown>): void;
    settings(s: Record<string, unknown>): Record<string, unknown>;
    load(nodeModules: unknown, flow: Array<Record<string, unknown>>, credentials?: Record<string, unknown>): Promise<void>;
    unload(): Promise<void>;
    /** Deploys a changed flow into the loaded Node-RED, as the editor does ("full", "nodes" or "flows"). */
    setFlows(flow: Array<Record<string, unknown>>, type?: "full" | "nodes" | "flows", credentials?: Record<string, unknown>): Promise<void>;
    getNode(id: string): TestNode;
    startServer(): Promise<void>;
    stopServer(): Promise<void>;
    request(): { get(path: string): SuperTestRequest; post(path: string): SuperTestRequest };
    /** The sinon spy on Node-RED's log: every call's first argument is {level, msg}. */
    log(): { args: Array<[{ level: number; msg: unknown; id?: string }]>; ERROR: number; WARN: number };
  }
  const helper: Helper;
  export = helper;
}
