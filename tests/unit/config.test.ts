import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig, withBoundAppPort } from '../../src/lib/server/config';

describe('configuration', () => {
	it('applies the contract defaults', () => {
		const config = readConfig({}, '/srv/chat');
		expect(config).toMatchObject({
			host: '127.0.0.1',
			port: 3000,
			relayPort: 3001,
			dataDir: '/srv/chat/data',
			databaseUrl: null,
			dynamodbEndpoint: null,
			redisUrl: null,
			publicRelayUrl: 'ws://127.0.0.1:3001',
			origin: 'http://127.0.0.1:3000',
			liveMessagesMax: 1000,
			rolloverAfter: 2000,
			roomIdleUnloadMs: 30000
		});
		expect(config.allowedOrigins).toEqual(['http://127.0.0.1:3000', 'http://localhost:3000']);
	});

	it('names the variable that is wrong', () => {
		expect(() => readConfig({ PORT: 'eighty' })).toThrow(ConfigError);
		expect(() => readConfig({ PORT: 'eighty' })).toThrow(/^PORT:/);
		expect(() => readConfig({ RELAY_PORT: '70000' })).toThrow(/^RELAY_PORT:/);
		expect(() => readConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/^DATABASE_URL:/);
		expect(() => readConfig({ REDIS_URL: 'not a url' })).toThrow(/^REDIS_URL:/);
		expect(() => readConfig({ LIVE_MESSAGES_MAX: '0' })).toThrow(/^LIVE_MESSAGES_MAX:/);
		expect(() => readConfig({ EPOCH_ROLLOVER_AFTER: '-5' })).toThrow(/^EPOCH_ROLLOVER_AFTER:/);
		expect(() => readConfig({ ROOM_IDLE_UNLOAD_MS: 'soon' })).toThrow(/^ROOM_IDLE_UNLOAD_MS:/);
		expect(() => readConfig({ LOG_LEVEL: 'loud' })).toThrow(/^LOG_LEVEL:/);
	});

	it('follows a bound port when ORIGIN and PUBLIC_RELAY_URL were derived', () => {
		const config = withBoundAppPort(readConfig({ PORT: '0', RELAY_PORT: '0' }), 41234);
		expect(config.origin).toBe('http://127.0.0.1:41234');
		expect(config.allowedOrigins).toContain('http://localhost:41234');
		expect(config.publicRelayUrlExplicit).toBe(false);
	});

	it('keeps an explicit ORIGIN and adds ALLOWED_ORIGINS', () => {
		const config = withBoundAppPort(
			readConfig({ ORIGIN: 'https://chat.example.com/', ALLOWED_ORIGINS: 'https://a.example.com, https://b.example.com' }),
			4000
		);
		expect(config.origin).toBe('https://chat.example.com');
		expect(config.allowedOrigins).toEqual(['https://chat.example.com', 'https://a.example.com', 'https://b.example.com']);
	});
});
