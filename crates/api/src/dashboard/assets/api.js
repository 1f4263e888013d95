// Reading heapster's JSON: one function, so every view reports a failed request the same way.

/** GET `path` with `params` (empty values left out); throws an Error carrying the server's one-line reason. */
export async function getJSON(path, params = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') qs.set(k, v);
  }
  const url = qs.toString() ? `${path}?${qs}` : path;
  let resp;
  try {
    resp = await fetch(url, { headers: { Accept: 'application/json' } });
  } catch (e) {
    throw new Error(`heapster did not answer ${url} (${e.message}); is it still running?`);
  }
  const body = await resp.text();
  let json;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error(`${url} answered ${resp.status} with something other than JSON`);
  }
  if (!resp.ok) throw new Error(`${url}: ${json.error || resp.status}`);
  return json;
}

export const API = '/api/v1/dashboard';
