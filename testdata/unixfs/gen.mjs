// Generates expected.json: the CIDs the reference JS importer (ipfs-unixfs-importer 17)
// computes for every fixture of seedbank-files' tests. See README.md beside this file.
//
// Every input is described, not stored: a fill ("zero", "random" with a seed, or "text")
// and a size, or a directory tree of such files. The Rust tests build the same inputs from
// the same descriptions, so `cargo test` needs no Node.
//
// "random" is xorshift32 (Marsaglia's 13/17/5 triple) started at `seed`; each step's new
// state is appended as 4 little-endian bytes, and the stream is cut at `size`.

import { writeFileSync } from 'node:fs'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { UnixFS } from 'ipfs-unixfs'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'

const KIB = 1024
const MIB = 1024 * KIB
const THRESHOLD = 262144

const PROFILES = {
  'unixfs-v1-2025': { chunk: MIB, width: 1024, cidLen: 36, strategy: 'block-bytes', options: { profile: 'unixfs-v1-2025' } },
  'unixfs-v0-2015': { chunk: 256 * KIB, width: 174, cidLen: 34, strategy: 'links-bytes', options: { profile: 'unixfs-v0-2015' } },
  'kubo-cidv1': {
    chunk: 256 * KIB,
    width: 174,
    cidLen: 36,
    strategy: 'links-bytes',
    options: {
      cidVersion: 1,
      rawLeaves: true,
      chunker: fixedSize({ chunkSize: 256 * KIB }),
      layout: balanced({ maxChildrenPerNode: 174 }),
      shardSplitStrategy: 'links-bytes'
    }
  }
}

// CIDs published in IPIP-499 ("Test fixtures") and the UnixFS spec; the importer must
// reproduce them before anything else here is trusted.
const PUBLISHED = [
  { profile: 'unixfs-v0-2015', name: 'ipip-499-hello-world', content: { fill: 'text', text: 'hello world' }, cid: 'Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD' },
  { profile: 'unixfs-v1-2025', name: 'ipip-499-hello-world', content: { fill: 'text', text: 'hello world' }, cid: 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e' },
  { profile: 'unixfs-v0-2015', name: 'spec-empty-dir', tree: { entries: [] }, cid: 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn' },
  { profile: 'unixfs-v1-2025', name: 'spec-empty-dir', tree: { entries: [] }, cid: 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354' }
]

const SEED = 0x5eedba4c

function * contentChunks (content) {
  if (content.fill === 'text') {
    yield new TextEncoder().encode(content.text)
    return
  }
  const step = MIB
  if (content.fill === 'zero') {
    const zeros = new Uint8Array(step)
    for (let left = content.size; left > 0; left -= step) {
      yield left >= step ? zeros : zeros.subarray(0, left)
    }
    return
  }
  if (content.fill !== 'random') throw new Error(`unknown fill ${content.fill}`)
  let x = content.seed >>> 0
  for (let left = content.size; left > 0; left -= step) {
    const n = Math.min(step, left)
    const buf = new Uint8Array(Math.ceil(n / 4) * 4)
    const view = new DataView(buf.buffer)
    for (let i = 0; i < buf.length; i += 4) {
      x ^= x << 13; x >>>= 0
      x ^= x >>> 17
      x ^= x << 5; x >>>= 0
      view.setUint32(i, x, true)
    }
    yield buf.subarray(0, n)
  }
}

// Keeps dag-pb blocks only (to read roots back); raw leaves are dropped.
class NodeStore {
  constructor () { this.blocks = new Map() }
  async put (cid, bytes) {
    if (cid.code === dagPb.code) this.blocks.set(cid.toString(), bytes)
    return cid
  }
}

function rootKind (store, cid) {
  if (cid.code !== dagPb.code) return 'file'
  const node = dagPb.decode(store.blocks.get(cid.toString()))
  return UnixFS.unmarshal(node.Data).type
}

// The files of a `flat` tree: `count` files named by their zero-padded index, all
// `name_len` characters long but the last (`last_name_len`); each file holds its name.
function flatEntries ({ count, name_len: len, last_name_len: last }) {
  const entries = []
  for (let i = 0; i < count; i++) {
    const name = String(i).padStart(i === count - 1 ? last : len, '0')
    entries.push({ path: name, content: { fill: 'text', text: name } })
  }
  return entries
}

function treeEntries (tree) {
  return tree.flat != null ? flatEntries(tree.flat) : tree.entries
}

async function importTree (root, tree, options) {
  const store = new NodeStore()
  const candidates = [{ path: root }]
  for (const e of treeEntries(tree)) {
    const path = `${root}/${e.path}`
    if (e.dir) candidates.push({ path })
    else if (e.symlink != null) candidates.push({ path, link: e.symlink })
    else candidates.push({ path, content: contentChunks(e.content) })
  }
  const entries = []
  for await (const entry of importer(candidates, store, options)) {
    entries.push({ path: entry.path, cid: entry.cid.toString() })
  }
  const rootCid = entries[entries.length - 1].cid
  return { cid: rootCid, entries, kind: rootKind(store, CID.parse(rootCid)) }
}

async function importContent (content, options) {
  const store = new NodeStore()
  let last
  for await (const entry of importer([{ content: contentChunks(content) }], store, options)) last = entry
  return { cid: last.cid.toString(), kind: rootKind(store, last.cid) }
}

// Exact sizes of a directory's links, as the importer estimates them (pb-size.ts).
function varintLen (x) { let n = 1; while (x >= 128) { x = Math.floor(x / 128); n++ } return n }
function linkBlockBytes (nameLen, cidLen, tsize) {
  const inner = 1 + varintLen(cidLen) + cidLen + 1 + varintLen(nameLen) + nameLen + 1 + varintLen(tsize)
  return 1 + varintLen(inner) + inner
}

// A flat tree whose estimated directory size is exactly `target` under `profile`.
function flatTreeOfSize (profile, target) {
  const p = PROFILES[profile]
  const len = 64
  // A file holding its own name is one chunk: a raw leaf (tsize = its length) or a dag-pb
  // leaf (tsize = its block length) under CIDv0.
  const tsize = (n) => p.cidLen === 34 ? leafBlockLen(n) : n
  const linkSize = (n) => p.strategy === 'links-bytes' ? n + p.cidLen : linkBlockBytes(n, p.cidLen, tsize(n))
  const base = p.strategy === 'links-bytes' ? 0 : 4
  for (let count = Math.floor((target - base) / linkSize(len)); count > 0; count--) {
    const rest = target - base - (count - 1) * linkSize(len)
    for (let last = 8; last <= 255; last++) {
      if (linkSize(last) === rest) return { flat: { count, name_len: len, last_name_len: last } }
    }
  }
  throw new Error(`no flat tree of ${target} bytes for ${profile}`)
}

function leafBlockLen (n) {
  const data = new UnixFS({ type: 'file', data: new Uint8Array(n) }).marshal()
  return dagPb.encode({ Data: data, Links: [] }).length
}

const NESTED = {
  entries: [
    { path: 'a.txt', content: { fill: 'random', seed: 7, size: 100 } },
    { path: 'b/c.bin', content: { fill: 'random', seed: 8, size: 300000 } },
    { path: 'b/big.bin', content: { fill: 'random', seed: 9, size: 1100000 } },
    { path: 'b/d/e', content: { fill: 'zero', size: 0 } },
    { path: 'b/d/empty2', dir: true },
    { path: 'b/link', symlink: '../a.txt' },
    { path: 'empty', dir: true },
    { path: 'z', content: { fill: 'zero', size: 3 } },
    { path: 'ünïcode ñame.txt', content: { fill: 'random', seed: 10, size: 10 } }
  ]
}

async function main () {
  const out = {
    generator: 'ipfs-unixfs-importer 17.1.1 (testdata/unixfs/gen.mjs)',
    random: 'xorshift32 13/17/5 from seed; each state as 4 little-endian bytes',
    fixtures: []
  }
  for (const f of PUBLISHED) {
    const { options } = PROFILES[f.profile]
    const got = f.tree != null ? await importTree('root', f.tree, options) : await importContent(f.content, options)
    if (got.cid !== f.cid) throw new Error(`${f.profile} ${f.name}: importer gave ${got.cid}, published ${f.cid}`)
    out.fixtures.push({ profile: f.profile, name: f.name, source: 'published', ...(f.tree != null ? { tree: f.tree } : { content: f.content }), cid: f.cid, kind: got.kind })
  }
  for (const [profile, p] of Object.entries(PROFILES)) {
    const { chunk: c, width: w, options } = p
    const files = []
    for (const size of [0, 1, c - 1, c, c + 1, w * c, w * c + 1]) files.push({ fill: 'zero', size })
    const randomSizes = [1, c - 1, c, c + 1, 3 * c + 12345]
    if (w * c + 1 <= 64 * MIB) randomSizes.push(w * c + 1)
    for (const size of randomSizes) files.push({ fill: 'random', seed: SEED, size })
    for (const content of files) {
      const got = await importContent(content, options)
      const name = `file-${content.fill}-${content.size}`
      out.fixtures.push({ profile, name, source: 'importer', content, cid: got.cid, kind: got.kind })
      console.error(profile, name, got.cid)
    }
    const trees = [
      ['dir-empty', { entries: [] }],
      ['dir-nested', NESTED],
      ['dir-at-threshold', flatTreeOfSize(profile, THRESHOLD)],
      ['dir-over-threshold', flatTreeOfSize(profile, THRESHOLD + 1)]
    ]
    for (const [name, tree] of trees) {
      const got = await importTree('root', tree, options)
      const fixture = { profile, name, source: 'importer', tree, cid: got.cid, kind: got.kind }
      if (tree.entries != null) fixture.entries = got.entries
      out.fixtures.push(fixture)
      console.error(profile, name, got.cid, got.kind)
    }
  }
  const path = process.argv[2] ?? new URL('./expected.json', import.meta.url).pathname
  writeFileSync(path, JSON.stringify(out, null, 1) + '\n')
  console.error(`wrote ${out.fixtures.length} fixtures to ${path}`)
}

await main()
