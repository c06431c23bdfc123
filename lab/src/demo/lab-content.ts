/**
 * Sample content of the five platform emulators: real media (the shipped MP4, PNG and subtitles), one
 * 6 MiB file per platform for reads that outlive a token, the states that cannot be read (a Nomad
 * asset in Glacier, one still uploading), and, when asked, one folder of `manyCount` entries each.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WordbeeEmulator } from '../emulators/wordbee/index.js';
import type { MkioEmulator } from '../emulators/mkio/index.js';
import type { AmsEmulator } from '../emulators/ams/index.js';
import type { NomadEmulator } from '../emulators/nomad/index.js';
import type { MediahubEmulator } from '../emulators/mediahub/index.js';
import { deterministicBytes, mediaDir } from './sample-media.js';

export interface PlatformPaths {
  /** The sample MP4 (mount-relative, under the source). */
  readonly video: string;
  /** A 6 MiB file (deterministicBytes(`lab-big-<platform>`)). */
  readonly big: string;
  /** The folder holding `manyCount` entries, when seeded. */
  readonly many: string;
  /** Listed but unreadable files and the errno reading them gives. */
  readonly unreadable: readonly { path: string; errno: 'EACCES' | 'EAGAIN' }[];
}

export const BIG_BYTES = 6 * 1024 * 1024 + 123;
export const bigBytesOf = (platform: string) => deterministicBytes(`lab-big-${platform}`, BIG_BYTES);

interface Emulators {
  wordbee: WordbeeEmulator;
  mkio: MkioEmulator;
  ams: AmsEmulator;
  nomad: NomadEmulator;
  mediahub: MediahubEmulator;
}

export async function seedPlatforms(e: Emulators, opts: { manyCount: number }): Promise<Record<keyof Emulators, PlatformPaths>> {
  const dir = mediaDir();
  const [mp4, png, en, fr] = await Promise.all(['sample.mp4', 'poster.png', 'sample.en.srt', 'sample.fr.srt'].map((f) => readFile(join(dir, f))));
  const many = opts.manyCount;

  // Wordbee: scope/document/segment/locale/relativePath, relativePath written with backslashes.
  const wb = e.wordbee.catalog;
  wb.addDocument(7214, 19641, 'campaign\\launch-script.docx');
  wb.addDocument(7214, 19642, 'campaign\\press-kit.docx');
  const seg = wb.addSegment(19641, 27665601, 'Our new product launches today.').id;
  const seg2 = wb.addSegment(19642, 27665602, 'Press contact').id;
  const seg3 = wb.addSegment(19642, 27665603, 'Bulk assets').id;
  await wb.putAsset(seg, 'en', 'videos', 'teaser.mp4', mp4!);
  await wb.putAsset(seg, 'en', 'images\\key-art', 'poster.png', png!);
  await wb.putAsset(seg, 'en', 'subtitles', 'teaser.en.srt', en!);
  await wb.putAsset(seg, 'fr', 'subtitles', 'teaser.fr.srt', fr!);
  await wb.putAsset(seg, 'de', '', 'big.bin', bigBytesOf('wordbee'));
  await wb.putAsset(seg2, '', '', 'contacts.txt', Buffer.from('press@example.com\n'));
  if (many) await e.wordbee.seedMany(seg3, 'en', 'many', many);

  // MK.IO: assets on Azure (subPath incoming) and on S3 storage.
  await e.mkio.createAsset('launch-teaser', { storage: 'azure', subPath: 'incoming' });
  await e.mkio.putFile('launch-teaser', 'teaser.mp4', mp4!);
  await e.mkio.putFile('launch-teaser', 'subtitles/teaser.en.srt', en!);
  await e.mkio.putFile('launch-teaser', 'subtitles/teaser.fr.srt', fr!);
  await e.mkio.createAsset('poster-pack', { storage: 's3', subPath: 'art' });
  await e.mkio.putFile('poster-pack', 'poster.png', png!);
  await e.mkio.putFile('poster-pack', 'big.bin', bigBytesOf('mkio'));
  if (many) e.mkio.seedMany(many, { prefix: 'bulk-' });

  // AMS: flat assets of files.
  const teaser = e.ams.createAsset('Launch Teaser');
  await e.ams.putFile(teaser, 'teaser.mp4', mp4!);
  await e.ams.putFile(teaser, 'poster.png', png!);
  await e.ams.putFile(teaser, 'teaser.en.srt', en!);
  const raw = e.ams.createAsset('Raw Footage');
  await e.ams.putFile(raw, 'big.bin', bigBytesOf('ams'));
  if (many) e.ams.seedFiles(e.ams.createAsset('Bulk'), Array.from({ length: many }, (_, i) => `f-${String(i).padStart(5, '0')}.bin`));

  // Nomad: a folder tree in a bucket, an archived master, an upload in progress.
  await e.nomad.putPath('media-bucket/Projects/2026/Launch/teaser.mp4', mp4!);
  await e.nomad.putPath('media-bucket/Projects/2026/Launch/subtitles/teaser.en.srt', en!);
  await e.nomad.putPath('media-bucket/Projects/2026/Launch/poster.png', png!);
  await e.nomad.putPath('media-bucket/Projects/2026/Raw/big.bin', bigBytesOf('nomad'));
  await e.nomad.putPath('media-bucket/Archive/2019-master.mp4', mp4!, { status: 'Archived' });
  await e.nomad.putPath('media-bucket/Incoming/still-uploading.mov', Buffer.from('partial'), { status: 'Uploading' });
  if (many) await e.nomad.seedMany(e.nomad.ensurePath('media-bucket/Bulk'), many);

  // MediaHub: pipelines of object keys, a file without a key, an archive of items.
  await e.mediahub.putFile({ pipelineId: 'pl-launch', objectKey: 'uploads/teaser.mp4', bytes: mp4! });
  await e.mediahub.putFile({ pipelineId: 'pl-launch', objectKey: 'uploads/subtitles/teaser.en.srt', bytes: en! });
  await e.mediahub.putFile({ pipelineId: 'pl-launch', objectKey: 'renders/big.bin', bytes: bigBytesOf('mediahub') });
  await e.mediahub.putFile({ pipelineId: 'pl-launch', objectKey: null, name: 'loose-note.txt', bytes: Buffer.from('no object key\n') });
  await e.mediahub.putFile({ pipelineId: 'pl-launch', objectKey: 'incoming/ingesting.mov', bytes: Buffer.from('partial'), status: 'UPLOADING' });
  await e.mediahub.putArchive({ pipelineId: 'pl-launch', objectKey: 'deliveries/package.zip', items: [{ name: 'poster.png', bytes: png! }, { name: 'teaser.fr.srt', bytes: fr! }] });
  if (many) await e.mediahub.seedMany('pl-bulk', 'many', many);

  return {
    wordbee: { video: 'pr7214/19641/27665601/en/videos/teaser.mp4', big: 'pr7214/19641/27665601/de/big.bin', many: 'pr7214/19642/27665603/en/many', unreadable: [] },
    mkio: { video: 'launch-teaser/teaser.mp4', big: 'poster-pack/big.bin', many: '', unreadable: [] },
    ams: { video: 'Launch Teaser/teaser.mp4', big: 'Raw Footage/big.bin', many: 'Bulk', unreadable: [] },
    nomad: {
      video: 'media-bucket/Projects/2026/Launch/teaser.mp4', big: 'media-bucket/Projects/2026/Raw/big.bin', many: 'media-bucket/Bulk',
      unreadable: [{ path: 'media-bucket/Archive/2019-master.mp4', errno: 'EACCES' }, { path: 'media-bucket/Incoming/still-uploading.mov', errno: 'EAGAIN' }],
    },
    mediahub: {
      video: 'pl-launch/uploads/teaser.mp4', big: 'pl-launch/renders/big.bin', many: 'pl-bulk/many',
      unreadable: [{ path: 'pl-launch/incoming/ingesting.mov', errno: 'EAGAIN' }],
    },
  };
}
