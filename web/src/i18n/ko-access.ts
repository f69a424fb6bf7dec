import type { enAccess } from './en-access.ts';

type Widen<T> = { [K in keyof T]: T[K] extends string ? string : Widen<T[K]> };

/** 로그인과 역할의 한국어 메시지 (`ko.ts`에 펼쳐 넣음). */
export const koAccess: Widen<typeof enAccess> = {
  access: {
    label: '로그인 사용자',
    identity: '{name} ({role})',
    anonymous: '로그인 안 함 ({role})',
    signIn: '로그인',
    signOut: '로그아웃',
    roles: { none: '권한 없음', display: '표시', viewer: '열람자', admin: '관리자' },
    signInForPeople: '사용자와 프로세스를 보려면 로그인하세요.',
    peopleHidden: '{role} 역할에는 사용자와 프로세스가 표시되지 않습니다.',
    commandHidden: '명령줄 숨김: 다른 사용자의 프로세스',
    screen: {
      title: '로그인이 필요합니다',
      body: '이 대시보드는 로그인해야 내용을 볼 수 있습니다.',
      noLogin: '관리자에게 접근 권한(역할이 있는 계정, 또는 벽면 디스플레이용 토큰 링크)을 요청하세요.',
      refused: '서버 응답: {message}',
    },
  },
};
