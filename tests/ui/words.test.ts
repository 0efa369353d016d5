/** Worker refusals read as sentences on screen (found in QA: "the link is damaged (…)" in lower case). */
import { describe, expect, it } from 'vitest';
import { asSentence, deliveryText, lengthHintText } from '../../src/ui/format/words.js';

describe('asSentence', () => {
  it.each([
    ['the link is damaged (it may have been cut off when copied)', 'The link is damaged (it may have been cut off when copied).'],
    ['that is not a Covey link or code', 'That is not a Covey link or code.'],
    ['Cannot reach http://127.0.0.1:8787; messages wait and go when it is back', 'Cannot reach http://127.0.0.1:8787; messages wait and go when it is back.'],
    ['That is your own card.', 'That is your own card.'],
    ['Is it you?', 'Is it you?'],
    ['  élan vital ', 'Élan vital.'],
    ['', ''],
  ])('%j', (text, sentence) => {
    expect(asSentence(text)).toBe(sentence);
  });
});

describe('lengthHintText', () => {
  it('says nothing until a name is near its limit', () => {
    expect(lengthHintText(0, 64)).toBeNull();
    expect(lengthHintText(53, 64)).toBeNull();
  });
  it('counts down near the limit, and says when it is reached', () => {
    expect(lengthHintText(54, 64)).toBe('10 characters left');
    expect(lengthHintText(63, 64)).toBe('1 character left');
    expect(lengthHintText(64, 64)).toBe('That is the longest a name can be (64 characters)');
    expect(lengthHintText(100, 100)).toBe('That is the longest a name can be (100 characters)');
  });
});

describe('deliveryText', () => {
  it('says who has a message and who has not been online since it was sent, as a whole sentence', () => {
    expect(deliveryText({ state: 'delivered', acked: 1, of: 2, notYetOnline: ['Carol'] })).toBe('Delivered to 1 of 2; Carol has not been online since it was sent');
    expect(deliveryText({ state: 'delivered', acked: 1, of: 3, notYetOnline: ['Carol', 'Dave'] })).toBe(
      'Delivered to 1 of 3; Carol and Dave have not been online since it was sent',
    );
    expect(deliveryText({ state: 'delivered', acked: 2, of: 3, notYetOnline: [] })).toBe('Delivered to 2 of 3');
    expect(deliveryText({ state: 'delivered-to-all', of: 1 })).toBe('Delivered');
    expect(deliveryText({ state: 'delivered-to-all', of: 4 })).toBe('Delivered to everyone (4)');
    expect(deliveryText({ state: 'waiting-to-send', text: '' })).toBe('Waiting to send');
  });
});
