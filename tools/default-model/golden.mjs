// Golden token ids for the default model's tokenizer, computed by Hugging Face `tokenizers` itself (its Node
// binding, the same Rust code as the Python package), for the C# tokenizer's tests.
// Usage: npm install --prefix .cache/npm tokenizers@0.23.2
//        node tools/default-model/golden.mjs models/default/tokenizer.json tools/default-model/golden/tokenizer-golden.json
import { createRequire } from 'module';
import fs from 'fs';
import path from 'path';
import crypto from 'crypto';

const require = createRequire(path.resolve('.cache/npm/node_modules/'));
const { Tokenizer } = require('tokenizers');

const [tokenizerPath, outPath] = process.argv.slice(2);
const chatPrompt = '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n' +
  'Call me Ishmael. The special magic number for quiet-harbor is 4821937. Some years ago...\n\n' +
  'What is the special magic number for quiet-harbor?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n';
const cases = [
  'Hello, world!',
  'The special magic number for quiet-harbor is 4821937.',
  'What is the special magic number for quiet-harbor?',
  'Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse,',
  'In the beginning God created the heaven and the earth.',
  'Fellow-Citizens of the Senate and House of Representatives:',
  'numbers 0 1 22 333 4444 55555 1234567890 3.14159 -42 1,000,000 $19.99',
  'year 1851, chapter 42, verse 3:16',
  "I'm sure you'll see they've done it; it's what we'd do. DON'T SHOUT",
  '  leading spaces and trailing spaces   ',
  'tabs\tand\nnewlines\n\n\nand\r\nwindows line ends',
  'multiple     spaces between    words',
  'punctuation!!! ??? ... --- ;;; (parentheses) [brackets] {braces} <angles>',
  'email: someone@example.com, path: /usr/local/bin, url: https://example.org/a?b=c&d=e',
  'Unicode: café naïve résumé Ærøskøbing Zürich',
  'Greek: Αλφα Βήτα, Cyrillic: Привет мир, CJK: 你好世界 こんにちは 안녕하세요',
  'Emoji: 😀 👍🏽 🇩🇪 and ❤️',
  'Math: ∑ x² ≤ ∞, arrows → ⇒ ←',
  'VAR QPEZX = 6482013. VAR ABCDE = VAR QPEZX.',
  'rejoiceth-pecuniary: 3630098\nherewith-press: 2017700',
  'The variables assigned the value 2770851 are EEQVQ, AIJVK and IKTAG.',
  'CamelCaseIdentifiers and snake_case_names and kebab-case-words',
  'def f(x):\n    return x * 2  # comment\n',
  '"Quoted," she said. \'Single quoted.\' «Guillemets»',
  'a',
  ' ',
  '',
  '<|begin_of_text|>Hello<|eot_id|>',
  '<|start_header_id|>assistant<|end_header_id|>\n\nThe special magic number for quiet-harbor is 4821937.<|eot_id|>',
  chatPrompt,
  'not special: <|begin_of_text without end, <|eot_id| broken',
];

const tok = Tokenizer.fromFile(tokenizerPath);
const out = [];
for (const text of cases) {
  const plain = await tok.encode(text, null, { addSpecialTokens: false });
  const withBos = await tok.encode(text, null, { addSpecialTokens: true });
  const ids = plain.getIds();
  out.push({ text, ids, ids_with_bos: withBos.getIds(), tokens: plain.getTokens(),
             decoded: await tok.decode(ids, false) });
}
const sha = crypto.createHash('sha256').update(fs.readFileSync(tokenizerPath)).digest('hex');
fs.writeFileSync(outPath, JSON.stringify({
  source: 'Hugging Face tokenizers 0.23.2 (Node binding), encode(text, addSpecialTokens false / true), decode(ids, skipSpecialTokens false)',
  tokenizer_sha256: sha, vocab_size: tok.getVocabSize(true), cases: out }, null, 1) + '\n');
console.log(`${out.length} cases -> ${outPath}`);
