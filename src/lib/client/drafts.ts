/** Unsent composer text per room, kept in memory while the app is open; cleared on sign-out. */
const drafts = new Map<string, string>();

export function getDraft(roomId: string): string {
	return drafts.get(roomId) ?? '';
}

export function setDraft(roomId: string, text: string): void {
	if (text) drafts.set(roomId, text);
	else drafts.delete(roomId);
}

export function clearDrafts(): void {
	drafts.clear();
}
