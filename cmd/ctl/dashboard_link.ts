/**
 * `skein ctl dashboard`: a link to the control node's dashboard carrying a new read token in
 * its fragment (`/ui/#token=…`): the page keeps it in session storage and clears it from the
 * address bar, and a fragment is never sent to the server. Creating the token needs admin.
 * @module
 */

/** The API call `skein ctl` makes (status and JSON body; throws on errors). */
export type CtlCall = (
  method: string,
  path: string,
  body?: unknown,
) => Promise<{ status: number; json: Record<string, unknown> }>;

/** How long the link's read token lives unless `--ttl` says otherwise. */
export const DASHBOARD_TOKEN_TTL = "12h";

/** Creates a read token valid for `ttl` and returns the dashboard link of `base` with it. */
export async function dashboardLink(call: CtlCall, base: string, ttl: string): Promise<string> {
  const r = await call("POST", "/v1/operator-tokens", {
    role: "read",
    name: "dashboard link",
    ttl,
  });
  const token = String(r.json.token ?? "");
  return `${base.replace(/\/+$/, "")}/ui/#token=${encodeURIComponent(token)}`;
}
