/** Every secret form the logger must remove (test/unit/logger.test.ts, test/unit/log-output.test.ts). */

/** Each secret form, with a marker that must never reach the file. */
export const SECRETS = {
  connectionString: 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=SECRET01key==;EndpointSuffix=core.windows.net',
  accessToken: '{"access_token":"SECRET02","token_type":"bearer"}',
  refreshToken: '{"refresh_token": "SECRET03", "expires_in": 3600}',
  password: '{"userName":"u","password":"SECRET04\\"quoted"}',
  userinfo: 'https://svc:SECRET05@db.example.com/path',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SECRET06jwtSignature',
  basic: 'Authorization: Basic SECRET07dXNlcjpwYXNz',
  bearer: 'authorization: Bearer SECRET08.token-value',
  sasUrl: 'https://acct.blob.core.windows.net/c/clip.mp4?sv=2021-08-06&se=2030-01-01&sp=r&sig=SECRET09sig%3D',
  amzUrl: 'https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=SECRET10AKIA%2F2024&X-Amz-Signature=SECRET11',
  sasAlone: 'sv=2021-08-06&ss=b&srt=sco&sp=rl&se=2030-01-01T00:00:00Z&sig=SECRET12sig',
  amzHeader: 'AWS4-HMAC-SHA256 Credential=SECRET13AKIA/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=SECRET14',
  authToken: 'X-Auth-Token: SECRET15wordbee',
  escapedJson: '"{\\"password\\":\\"SECRET16\\"}"',
  inspected: "{ clientSecret: 'SECRET17', user: 'u' }",
} as const;
export const MARKER = /SECRET\d\d/g;
