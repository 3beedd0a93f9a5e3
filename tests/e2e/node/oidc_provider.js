// A real OpenID provider for the gateway's OAuth 2.0 tests (issue 27): panva's oidc-provider, a
// certified implementation, on a loopback port the OS picks. One client ("devices", secret
// "devices-secret") gets JWT access tokens with the client-credentials grant for the resource
// urn:rosettamq (audience "rosettamq", 300 s) or urn:rosettamq:short (the same audience, 2 s).
// Prints "listening <port>" once it serves; keys are generated at each start (RS256).
import http from "node:http";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import Provider from "oidc-provider";

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: randomUUID(), alg: "RS256", use: "sig" };

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const port = server.address().port;
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    jwks: { keys: [jwk] },
    clients: [{
      client_id: "devices", client_secret: "devices-secret", grant_types: ["client_credentials"],
      redirect_uris: [], response_types: [], token_endpoint_auth_method: "client_secret_basic",
    }],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => "urn:rosettamq",
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => ({
          scope: "mqtt",
          audience: "rosettamq",
          accessTokenTTL: resource === "urn:rosettamq:short" ? 2 : 300,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
  });
  server.on("request", provider.callback());
  console.log(`listening ${port}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
