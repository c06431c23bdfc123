/** MIME types by file extension, for uploads (players and browsers use them). */
const TYPES: Record<string, string> = {
  mp4: 'video/mp4', m4v: 'video/mp4', m4a: 'audio/mp4', mov: 'video/quicktime', mkv: 'video/x-matroska', webm: 'video/webm',
  mxf: 'application/mxf', ts: 'video/mp2t', mp3: 'audio/mpeg', wav: 'audio/wav', jpg: 'image/jpeg', jpeg: 'image/jpeg',
  png: 'image/png', gif: 'image/gif', webp: 'image/webp', srt: 'application/x-subrip', vtt: 'text/vtt', txt: 'text/plain',
  json: 'application/json', xml: 'application/xml', pdf: 'application/pdf', zip: 'application/zip',
};

export function contentTypeOf(name: string): string {
  const ext = name.includes('.') ? name.split('.').pop()!.toLowerCase() : '';
  return TYPES[ext] ?? 'application/octet-stream';
}
