// The small part of Node-RED's runtime API that this package's node shells use.
// Declared here instead of pulling @types/node-red and its tree into the build.

export interface NodeMessage {
  _msgid?: string;
  topic?: string;
  payload?: unknown;
  [key: string]: unknown;
}

export interface NodeStatus {
  fill?: "red" | "green" | "yellow" | "blue" | "grey";
  shape?: "dot" | "ring";
  text?: string;
}

export type SendFn = (msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null>) => void;
export type DoneFn = (err?: Error) => void;

export interface Node {
  id: string;
  z?: string;
  type?: string;
  receive(msg: NodeMessage): void;
  name?: string;
  on(event: "input", fn: (msg: NodeMessage, send: SendFn, done: DoneFn) => void): void;
  on(event: "close", fn: (removed: boolean, done: () => void) => void): void;
  send: SendFn;
  status(s: NodeStatus | Record<string, never>): void;
  log(text: string): void;
  warn(text: string): void;
  error(text: string, msg?: NodeMessage): void;
  /** Called by Node-RED when it stops the node (runs its "close" handlers). */
  close?(removed?: boolean): unknown;
}

export interface NodeDef {
  id: string;
  type: string;
  name?: string;
  [key: string]: unknown;
}

export interface HttpRequest {
  params: Record<string, string>;
  body?: unknown;
}
export interface HttpResponse {
  sendStatus(code: number): void;
  status(code: number): HttpResponse;
  json(body: unknown): void;
  send(body: string): void;
}
type Handler = (req: HttpRequest, res: HttpResponse) => void;

export interface RED {
  nodes: {
    createNode(node: Node, def: NodeDef): void;
    registerType(type: string, ctor: (this: Node, def: NodeDef) => void, opts?: unknown): void;
    getNode(id: string): Node | null;
    /** Calls `f` with every node of the deployed flows, as configured (flow order). */
    eachNode(f: (def: NodeDef & { z?: string; d?: boolean }) => void): void;
  };
  settings: { userDir?: string; [key: string]: unknown };
  httpAdmin: {
    get(path: string, auth: unknown, handler: Handler): void;
    post(path: string, auth: unknown, handler: Handler): void;
  };
  auth: { needsPermission(permission: string): unknown };
  /** Messages to every open editor (the sidebar subscribes with RED.comms.subscribe). */
  comms: { publish(topic: string, data: unknown, retain?: boolean): void };
  events: {
    on<T = FlowsEvent>(event: string, fn: (arg: T) => void): void;
    removeListener<T = FlowsEvent>(event: string, fn: (arg: T) => void): void;
  };
  util: {
    cloneMessage<T>(msg: T): T;
    prepareJSONataExpression(expr: string, node: Node): JsonataExpression;
    evaluateJSONataExpression(expr: JsonataExpression, msg: NodeMessage, cb: (err: Error | null, result: unknown) => void): void;
    /** With type "env": the variable NAME from the node's group, flow, global and process environment, in that order. */
    evaluateNodeProperty(value: string, type: "env", node: Node, msg: NodeMessage): unknown;
  };
  log: { info(t: string): void; warn(t: string): void; error(t: string): void };
  /** Node-RED 1.3 and later: a module's plugins (package.json "node-red": { "plugins": ... }). */
  plugins: { registerPlugin(id: string, definition: { type?: string; onadd?: () => void }): void };
}

export type JsonataExpression = object;

/** What RED.events "flows:stopping" carries: which nodes and flows a deploy stops. */
export interface FlowsEvent {
  /** The deployed configuration: every node of every flow. */
  config?: { flows?: unknown[] };
  type?: "full" | "nodes" | "flows";
  diff?: { changed?: string[]; removed?: string[]; rewired?: string[]; linked?: string[]; flowChanged?: string[] };
}
