// Prints, as one JSON array, gpt-3-encoder's encode() of each string of the JSON array in the
// file argv[3]: the reference ids of GPT-2's tokenizer. argv[2]: the package's directory.
const fs = require("fs");
const { encode } = require(process.argv[2]);
const strings = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
process.stdout.write(JSON.stringify(strings.map((s) => encode(s))));
