/** Chat-like message bodies of 20–200 characters from a fixed vocabulary, drawn from `random`. */
const WORDS = 'the a tunnel train offline message sync room later tomorrow yes no maybe tent snacks nine road coffee'.split(' ');

export function chatText(random: () => number): string {
	const words: string[] = [];
	const target = 20 + Math.floor(random() * 180);
	while (words.join(' ').length < target) words.push(WORDS[Math.floor(random() * WORDS.length)]);
	return words.join(' ');
}
