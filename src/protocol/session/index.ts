/** The session layer (mpENC §4): what the worker imports to run a conversation. */
export { Session, MAX_KEPT_SUBSESSIONS, MAX_LIVE_SUBSESSIONS, type SessionDeps, type SessionState, type SubsessionInfo } from './session.js';
export { DEFAULT_SESSION_CONFIG, type SessionConfig } from './config.js';
export { isContent, needsAck, type DeliveredMessage, type GreetingOutcome, type Sealed, type SessionEffect, type SessionNotice, type SessionWarning } from './effects.js';
export type { Membership, MembershipContext, MembershipOutput, SubsessionSetup, WaitingOperation } from './membership.js';
export { GreetingMembership, type GreetingMembershipDeps } from './greeting-membership.js';
export { SESSION_SNAPSHOT_VERSION, type SessionSnapshot } from './snapshot.js';
export type { AckStatus, Delivery } from '../reliability/ack-monitor.js';
export type { Presence } from '../presence/presence-tracker.js';
export type { LogEntry, MessageLog } from '../transcript/message-log.js';
export type { MessageKey } from '../transcript/ids.js';
