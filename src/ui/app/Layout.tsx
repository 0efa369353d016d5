/**
 * The ready app: a list (chats, contacts or settings) and a detail (a conversation, a contact, …).
 * Wide screens show both side by side; a phone shows one at a time, the detail over the list,
 * with a back button (the browser's back works too).
 */
import type { JSX } from 'preact';
import type { AppView } from '../../shared/worker-api.js';
import { ChatList } from '../screens/chats/ChatList.js';
import { AddContact } from '../screens/contacts/AddContact.js';
import { ContactDetail } from '../screens/contacts/ContactDetail.js';
import { ContactList } from '../screens/contacts/ContactList.js';
import { MyCardScreen } from '../screens/contacts/MyCard.js';
import { OpenLink } from '../screens/contacts/OpenLink.js';
import { Conversation } from '../screens/conversation/Conversation.js';
import { NewGroup } from '../screens/groups/NewGroup.js';
import { Settings } from '../screens/settings/Settings.js';
import { Icon, type IconName } from '../components/icons.js';
import { RouterContext, useHistoryRouter, type Detail, type Section } from './router.js';
import { StatusBar } from './StatusBar.js';

const TABS: readonly { section: Section; label: string; icon: IconName }[] = [
  { section: 'chats', label: 'Chats', icon: 'chat' },
  { section: 'contacts', label: 'Contacts', icon: 'users' },
  { section: 'settings', label: 'Settings', icon: 'settings' },
];

function DetailPane({ detail, app }: { detail: Detail; app: AppView }): JSX.Element {
  switch (detail.name) {
    case 'conversation':
      return <Conversation key={detail.id} id={detail.id} panel={detail.panel ?? null} />;
    case 'contact':
      return <ContactDetail key={detail.id} id={detail.id} />;
    case 'add-contact':
      return <AddContact />;
    case 'my-card':
      return <MyCardScreen app={app} />;
    case 'new-group':
      return <NewGroup />;
  }
}

/** What the wide screen's right side says while nothing is open there, per section. */
const NOTHING_OPEN: Record<Section, { icon: IconName; text: string }> = {
  chats: { icon: 'chat', text: 'Choose a chat on the left, or start a new one.' },
  contacts: { icon: 'users', text: 'Choose someone on the left to see your safety number with them, or add a friend.' },
  settings: { icon: 'settings', text: 'Everything Covey keeps stays in this browser: these settings apply here only.' },
};

function NothingOpen({ section }: { section: Section }): JSX.Element {
  const { icon, text } = NOTHING_OPEN[section];
  return (
    <div class="nothing-open">
      <Icon name={icon} />
      <p>{text}</p>
    </div>
  );
}

export function Layout({ app }: { app: AppView }): JSX.Element {
  const router = useHistoryRouter();
  const { route } = router;
  // Each count where its items are listed: invitations to groups are in Chats, requests in Contacts.
  const badge = (section: Section) => (section === 'chats' ? app.unread + app.invitations : section === 'contacts' ? app.pendingRequests : 0);
  return (
    <RouterContext.Provider value={router}>
      <div class={route.detail === null ? 'layout' : 'layout layout-detail'}>
        <div class="sidebar">
          <StatusBar app={app} />
          <div class="sidebar-main">
            {route.section === 'chats' && <ChatList />}
            {route.section === 'contacts' && <ContactList app={app} />}
            {route.section === 'settings' && <Settings app={app} />}
          </div>
          <nav class="tabs" aria-label="Sections">
            {TABS.map((tab) => {
              const count = badge(tab.section);
              return (
                <button
                  key={tab.section}
                  type="button"
                  class="tab"
                  aria-current={route.section === tab.section ? 'page' : undefined}
                  onClick={() => router.go({ section: tab.section, detail: null })}
                >
                  <Icon name={tab.icon} />
                  <span>{tab.label}</span>
                  {count > 0 && (
                    <span class="count-badge">
                      {count}
                      <span class="visually-hidden">{tab.section === 'chats' ? ' new' : ' waiting'}</span>
                    </span>
                  )}
                </button>
              );
            })}
          </nav>
        </div>
        <div class="detail">{route.detail === null ? <NothingOpen section={route.section} /> : <DetailPane detail={route.detail} app={app} />}</div>
      </div>
      <OpenLink />
    </RouterContext.Provider>
  );
}
